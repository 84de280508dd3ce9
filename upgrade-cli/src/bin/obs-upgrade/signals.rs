//! SIGINT, SIGTERM and SIGHUP during a run that changes the host.
//!
//! The first signal asks the run to stop: no new component starts, the one
//! in flight is finished or rolled back (so every component runs a verified
//! version), the journal records it, and the command exits 5. A second
//! signal ends the process at once with exit 4: the journal then says what
//! remains, and `resume` (or the next unattended run) finishes it.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use upgrade_core::engine::StopFlag;

/// Routes the three signals to `stop` for the rest of the process.
pub fn stop_on_signals(stop: &StopFlag) {
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // Order matters: the exit is checked before the flag is set, so the
        // first signal only sets it and the second one exits.
        let installed = signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(crate::exit::INTERRUPTED),
            stop.flag(),
        )
        .and_then(|_| signal_hook::flag::register(sig, stop.flag()));
        if let Err(e) = installed {
            log::warn!("cannot handle signal {sig}: {e}; a signal will end the run abruptly");
        }
    }
}

/// The exit code of a run that may have been stopped: 5 when a signal
/// stopped it and nothing failed (a failure's 1 wins).
pub fn exit_code(stop: &StopFlag, code: u8) -> u8 {
    if stop.is_requested() && code == crate::exit::OK {
        eprintln!(
            "stopped by a signal: the component in flight was finished or rolled back; \
             the rest were not started"
        );
        crate::exit::STOPPED
    } else {
        code
    }
}
