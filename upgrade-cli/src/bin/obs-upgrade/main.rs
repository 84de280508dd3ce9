//! `obs-upgrade`: keeps a self-hosted observability stack up to date.
#![allow(clippy::print_stderr)] // the binary talks to the terminal; stdout goes through `out`

#[macro_use]
mod out;

mod args;
mod candidates;
mod cmd;
mod complete;
mod exit;
mod render;
mod signals;
mod terminal;

fn main() -> std::process::ExitCode {
    exit::run()
}
