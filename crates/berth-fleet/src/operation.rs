//! Operations: an inventory script run on many machines. This module is what happens on one
//! machine, and what is made of the results; `berth-core` queues the machines under the
//! limits, stores and publishes.
//!
//! - [`run_on_machine`]: connect (retried only here, before the script starts), `bash -s` with
//!   the script and its variables on stdin (never in argv), output streamed as it arrives, the
//!   end as a [`MachineRunStatus`](berth_types::operation::MachineRunStatus): exit code or
//!   signal, `timed_out` and `cancelled` after SIGTERM, grace, SIGKILL to every process of the
//!   script (also the ones that left its process group);
//! - [`OutputBuffer`]: at most `fleet.max_output` bytes per stream, the first and the last half,
//!   with a marker line for what was dropped in the middle.
//!
//! Machines that ended identically are grouped (as `dshbak -c` does) by the store, which
//! compares their output without loading it.

mod output;
mod run;

pub use output::{OutputBuffer, marker};
pub use run::{EVENTS_AT_END, RunEnd, RunEvent, RunSpec, run_on_machine};
