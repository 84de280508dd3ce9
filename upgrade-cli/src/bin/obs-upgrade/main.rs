//! `obs-upgrade`: keeps a self-hosted observability stack up to date.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the binary talks to the terminal

mod args;
mod cmd;
mod exit;
mod render;
mod signals;
mod terminal;

fn main() -> std::process::ExitCode {
    exit::run()
}
