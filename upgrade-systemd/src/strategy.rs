//! Restart strategies: how a switch reaches a running service.

use upgrade_core::catalog::Reload;
use upgrade_core::ports::{PortError, ServiceControl};

/// How to move a service onto the new binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Swap, then one `restart` (the shortest gap).
    Restart,
    /// Stop, swap, start (for services that must not run during the swap).
    StopSwapStart,
    /// Swap, then ask the running service to reload (configuration-only changes).
    Reload(Reload),
    /// The unit is socket-activated: swap and restart only the service; the
    /// listening socket stays open, so connections queue instead of being refused.
    SocketActivated,
}

impl Strategy {
    /// The strategy for a unit: socket activation when a `.socket` triggers it, else restart.
    pub fn for_unit(control: &dyn ServiceControl, unit: &str) -> Result<Strategy, PortError> {
        Ok(if control.status(unit)?.socket_activated() {
            Strategy::SocketActivated
        } else {
            Strategy::Restart
        })
    }

    /// Runs the switch: `swap` changes the binary (the `current` link).
    pub fn apply(
        &self,
        control: &dyn ServiceControl,
        unit: &str,
        swap: &mut dyn FnMut() -> Result<(), PortError>,
    ) -> Result<(), PortError> {
        match self {
            Strategy::Restart | Strategy::SocketActivated => {
                swap()?;
                control.restart(unit)
            }
            Strategy::StopSwapStart => {
                control.stop(unit)?;
                swap()?;
                control.start(unit)
            }
            Strategy::Reload(Reload::Signal(_)) => {
                swap()?;
                control.reload(unit)
            }
            Strategy::Reload(Reload::Http(path)) => {
                swap()?;
                Err(format!(
                    "reload of {unit} over HTTP ({path}) needs the service's address; use \
                    the health adapter's reload"
                )
                .into())
            }
        }
    }
}
