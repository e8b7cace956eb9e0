//! What the app knows, built only from Intervals: processes, the machine, and the
//! rows the table shows for the current view options.
pub mod feed;
pub mod gpu_calls;
pub mod history;
pub mod procs;
pub mod rows;
pub mod system;
