//! A fixed-capacity ring of samples (watts per tick) for sparklines.
use std::collections::VecDeque;

/// Samples per process sparkline: a minute at the default refresh.
pub const PROCESS_SAMPLES: usize = 60;
/// Samples per header sparkline: five minutes at the default refresh.
pub const SYSTEM_SAMPLES: usize = 300;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    capacity: usize,
    samples: VecDeque<f64>,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(1),
            samples: VecDeque::with_capacity(capacity.max(1)),
        }
    }

    /// Adds the newest sample, dropping the oldest when full.
    pub fn push(&mut self, value: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(value);
    }

    /// Oldest first.
    pub fn values(&self) -> Vec<f64> {
        self.samples.iter().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn last(&self) -> Option<f64> {
        self.samples.back().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_samples() {
        let mut history = History::new(3);
        assert!(history.is_empty());
        for value in [1.0, 2.0, 3.0, 4.0] {
            history.push(value);
        }
        assert_eq!(history.values(), vec![2.0, 3.0, 4.0]);
        assert_eq!((history.len(), history.last()), (3, Some(4.0)));
        assert_eq!(
            History::new(0).capacity,
            1,
            "a zero capacity still keeps one"
        );
    }
}
