//! The unit types of the config files (`512m`, `15m`, `10.0.0.0/8`) and the range checks of
//! their numbers live in `berth-types`, since a template travels over the API too.

pub use berth_types::units::{DiskSize, HumanDuration, IpNet, Memory};
pub(crate) use berth_types::units::{cpus, within, within_opt};
