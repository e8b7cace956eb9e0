//! The binary log: segments of CRC-framed bincode records in a directory, written
//! by `LogWriter` (a `Sink`) and read back by `reader`, which recovers everything
//! around damage. Format, byte by byte: docs/log-format.md.
//!
//! `record.rs` and `wire.rs` are the wire types; `convert.rs` (write) and
//! `decode.rs` (read) are the only places that map them to `model::Interval`.
pub mod convert;
pub mod decode;
pub mod fuzz;
pub mod index;
pub mod predict;
pub mod reader;
pub mod record;
pub mod segments;
pub mod synth;
mod system;
pub mod wire;
pub mod writer;

pub use reader::{Event, LogError, Notice, NoticeKind, read_intervals, visit};
pub use segments::Retention;
pub use writer::{FsyncPolicy, LogOptions, LogWriter};

#[cfg(test)]
mod damage_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod writer_tests;
