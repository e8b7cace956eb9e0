//! The eBPF programs' log lines (aya-log, `agent-ebpf/src/rare.rs`): read at each tick
//! and written through tracing with target `greentop_ebpf`, so `RUST_LOG=warn` (or
//! `greentop_ebpf=warn`) shows them. They are rare by construction: the programs log
//! a kind of event at its 1st, 2nd, 4th, … occurrence per CPU.
use aya::Ebpf;
use aya_log::EbpfLogger;

/// Reads the programs' log ring buffer.
pub(super) struct EbpfLog {
    logger: EbpfLogger<Bridge>,
}

/// aya-log speaks the `log` crate; greentop logs with tracing.
struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let text = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(target: "greentop_ebpf", "{text}"),
            log::Level::Warn => tracing::warn!(target: "greentop_ebpf", "{text}"),
            log::Level::Info => tracing::info!(target: "greentop_ebpf", "{text}"),
            log::Level::Debug => tracing::debug!(target: "greentop_ebpf", "{text}"),
            log::Level::Trace => tracing::trace!(target: "greentop_ebpf", "{text}"),
        }
    }

    fn flush(&self) {}
}

impl EbpfLog {
    /// Takes the log map from the loaded object; `None` (said at debug level) when
    /// the object has none.
    pub fn init(ebpf: &mut Ebpf) -> Option<EbpfLog> {
        match EbpfLogger::init_with_logger(ebpf, Bridge) {
            Ok(logger) => Some(EbpfLog { logger }),
            Err(err) => {
                tracing::debug!("no eBPF log: {err}");
                None
            }
        }
    }

    /// Writes out every line logged since the last call.
    pub fn flush(&mut self) {
        self.logger.flush();
    }
}
