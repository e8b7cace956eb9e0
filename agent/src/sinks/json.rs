//! The JSON-lines sink: one Interval per line, the batch JSON contract
//! (docs/architecture.md), to any writer — stdout for `greentop --batch --json` and
//! `greentop-agent`. It keeps the contract's cumulative `joules_total` and
//! `gco2_total` itself: the pipeline emits per-interval numbers only.
use std::io::Write;

use super::totals::RunningTotals;
use super::{Sink, SinkError};
use crate::model::Interval;

/// Writes each Interval as one line of JSON.
pub struct JsonLines<W: Write> {
    out: W,
    /// Flush after every line, so a reader of a pipe sees each interval at once.
    flush_each: bool,
    totals: RunningTotals,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines {
            out,
            flush_each: false,
            totals: RunningTotals::default(),
        }
    }

    /// Flushes the writer after each interval.
    pub fn flushing_each_line(mut self) -> Self {
        self.flush_each = true;
        self
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn name(&self) -> &str {
        "json"
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        let stream = |source| SinkError::Stream {
            what: "JSON lines",
            source,
        };
        let mut interval = interval.clone();
        self.totals.apply(&mut interval);
        serde_json::to_writer(&mut self.out, &interval).map_err(|e| stream(e.into()))?;
        self.out.write_all(b"\n").map_err(stream)?;
        if self.flush_each {
            self.out.flush().map_err(stream)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|source| SinkError::Stream {
            what: "JSON lines",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_in_the_contract_shape() {
        let mut sink = JsonLines::new(Vec::new());
        let mut interval = Interval {
            ts: "2026-11-22T22:10:00.123Z".into(),
            interval_s: 1.0,
            ..Interval::default()
        };
        sink.write(&interval).unwrap();
        interval.interval_s = 2.0;
        sink.write(&interval).unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: Interval = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(back, interval);
        assert!(lines[0].starts_with(r#"{"ts":"2026-11-22T22:10:00.123Z","interval_s":1.0,"#));
    }

    #[test]
    fn totals_are_summed_here_from_per_interval_numbers() {
        use crate::model::ProcessEnergy;
        let mut sink = JsonLines::new(Vec::new());
        let process = |joules: f64| ProcessEnergy {
            pid: 7,
            start_ns: 3,
            joules,
            gco2: joules / 100.0,
            ..ProcessEnergy::default()
        };
        for joules in [1.5, 2.0] {
            let interval = Interval {
                processes: vec![process(joules)],
                ..Interval::default()
            };
            sink.write(&interval).unwrap();
        }
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let totals: Vec<(f64, f64)> = text
            .lines()
            .map(|l| serde_json::from_str::<Interval>(l).unwrap())
            .map(|i| (i.processes[0].joules, i.processes[0].joules_total))
            .collect();
        assert_eq!(totals, [(1.5, 1.5), (2.0, 3.5)]);
    }
}
