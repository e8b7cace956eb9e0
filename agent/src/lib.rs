//! greentop's collector library: the kernel CPU-time ledger, the process table and
//! the per-tick `Interval` every sink consumes.
pub mod cli;
pub mod energy;
pub mod model;
pub mod pipeline;
pub mod probes;
pub mod topology;
