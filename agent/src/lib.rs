//! greentop's collector library: the kernel CPU-time ledger, the process table and
//! the per-tick `Interval` every sink consumes.
pub mod attribution;
pub mod calibrate;
pub mod carbon;
pub mod cli;
pub mod codecarbon;
pub mod config;
pub mod daemon;
pub mod driver;
pub mod energy;
pub mod interval;
pub mod jobs;
pub mod model;
pub mod pipeline;
pub mod privilege;
pub mod probes;
pub mod report;
pub mod sinks;
pub mod topology;
