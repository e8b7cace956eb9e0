//! Bounded, monotonic series: which processes (or jobs) get a series of their own.
//!
//! An item earns a series by being among the top N by energy in an interval, keeps
//! it while it stays there, and loses it after `grace` out of the top N, unseen, or
//! exited — but never before a scrape has seen its last value. At most `cap` items
//! have a series at once. An item that had a series and comes back resumes from the
//! value it had, so a series never goes down. A series counts only once a scrape
//! has seen it (at 0, or where it resumed): `rate()` cannot see what a series
//! gathered before its first sample. Until then, and for items without a series,
//! the caller charges an `other` series, so the totals add up in PromQL too.
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// One item the table knows about: it has, or had, a series.
#[derive(Debug)]
pub(super) struct Tracked<L, V> {
    pub labels: L,
    pub value: V,
    /// Whether the series is exported now.
    pub active: bool,
    last_seen: Instant,
    /// Since when it has been outside the top N (or unseen), while it was active.
    out_since: Option<Instant>,
    exited_at: Option<Instant>,
    /// The scrape count when its value last changed (or it got its series): a series
    /// is only removed once a later scrape has read its final value.
    changed_at_scrape: u64,
    /// The scrape count when it got its series: it counts once a later scrape saw it.
    activated_at_scrape: u64,
}

/// What one interval says about one item.
pub(super) struct Seen<K, L> {
    pub key: K,
    pub labels: L,
    pub in_top: bool,
    pub exited: bool,
}

/// Items with series, keyed by `K` (a process's pid and start time, a job label),
/// exported with labels `L`, holding values `V`.
#[derive(Debug)]
pub(super) struct SeriesTable<K, L, V> {
    cap: usize,
    items: HashMap<K, Tracked<L, V>>,
    /// Labels of the active series: two items may not export the same series.
    active_labels: HashSet<L>,
}

impl<K, L, V> SeriesTable<K, L, V>
where
    K: Hash + Eq + Clone,
    L: Hash + Eq + Clone,
    V: Default,
{
    pub fn new(cap: usize) -> Self {
        SeriesTable {
            cap,
            items: HashMap::new(),
            active_labels: HashSet::new(),
        }
    }

    /// Records that `seen.key` appeared in this interval; returns its value to add the
    /// interval's energy to when it has a series a scrape has seen, `None` when the
    /// caller must charge an `other` series instead.
    pub fn observe(&mut self, seen: Seen<K, L>, now: Instant, scrapes: u64) -> Option<&mut V> {
        if !self.items.get(&seen.key).is_some_and(|t| t.active) && seen.in_top {
            self.try_activate(&seen, now, scrapes);
        }
        let item = self.items.get_mut(&seen.key)?;
        item.last_seen = now;
        if seen.exited {
            item.exited_at.get_or_insert(now);
        }
        if !item.active {
            return None;
        }
        if seen.in_top {
            item.out_since = None;
        } else {
            item.out_since.get_or_insert(now);
        }
        if scrapes <= item.activated_at_scrape {
            return None;
        }
        item.changed_at_scrape = scrapes;
        Some(&mut item.value)
    }

    /// Gives `seen` a series if there is room (evicting the item longest out of the
    /// top N if needed) and no other item exports the same labels.
    fn try_activate(&mut self, seen: &Seen<K, L>, now: Instant, scrapes: u64) {
        if self.active_labels.contains(&seen.labels) {
            return;
        }
        if self.active_labels.len() >= self.cap && !self.evict_one(scrapes) {
            return;
        }
        let item = self
            .items
            .entry(seen.key.clone())
            .or_insert_with(|| Tracked {
                labels: seen.labels.clone(),
                value: V::default(),
                active: false,
                last_seen: now,
                out_since: None,
                exited_at: None,
                changed_at_scrape: 0,
                activated_at_scrape: 0,
            });
        if item.labels != seen.labels {
            // Renamed or moved (exec, cgroup change): a new series, from zero.
            item.labels = seen.labels.clone();
            item.value = V::default();
        }
        item.active = true;
        item.out_since = None;
        item.changed_at_scrape = scrapes;
        item.activated_at_scrape = scrapes;
        self.active_labels.insert(item.labels.clone());
    }

    /// Retires the live series longest out of the top N whose last value has been
    /// scraped. Exited items are left for `sweep`. False when there is none.
    fn evict_one(&mut self, scrapes: u64) -> bool {
        let victim = self
            .items
            .iter()
            .filter(|(_, t)| t.active && t.exited_at.is_none())
            .filter(|(_, t)| scrapes > t.changed_at_scrape)
            .filter_map(|(k, t)| Some((k, t.out_since?)))
            .min_by_key(|(_, since)| *since)
            .map(|(k, _)| k.clone());
        match victim.and_then(|k| self.items.get_mut(&k)) {
            Some(item) => {
                item.active = false;
                self.active_labels.remove(&item.labels);
                true
            }
            None => false,
        }
    }

    /// Ends series past their grace period (whose last value a scrape has read) and
    /// forgets items that can no longer come back: exited, or unseen for `grace`.
    pub fn sweep(&mut self, now: Instant, grace: Duration, scrapes: u64) {
        let past = |at: Option<Instant>| at.is_some_and(|t| now.duration_since(t) >= grace);
        for item in self.items.values_mut() {
            if item.active && item.last_seen != now {
                item.out_since.get_or_insert(item.last_seen);
            }
            let retire = item.active
                && (past(item.exited_at) || past(item.out_since))
                && scrapes > item.changed_at_scrape;
            if retire {
                item.active = false;
                self.active_labels.remove(&item.labels);
            }
        }
        self.items.retain(|_, item| {
            item.active || (item.exited_at.is_none() && !past(Some(item.last_seen)))
        });
    }

    /// The exported series: labels and values.
    pub fn active(&self) -> impl Iterator<Item = (&L, &V)> {
        self.items
            .values()
            .filter(|t| t.active)
            .map(|t| (&t.labels, &t.value))
    }

    pub fn active_count(&self) -> usize {
        self.active_labels.len()
    }

    /// Items remembered, with or without a series.
    #[cfg(test)]
    pub fn tracked_count(&self) -> usize {
        self.items.len()
    }

    /// The value of an item with a series, by key.
    #[cfg(test)]
    pub fn value_of(&self, key: &K) -> Option<&V> {
        self.items.get(key).filter(|t| t.active).map(|t| &t.value)
    }

    /// The value of an item with a series a scrape has seen, to add to.
    pub fn value_mut(&mut self, key: &K, scrapes: u64) -> Option<&mut V> {
        let item = self.items.get_mut(key)?;
        let counting = item.active && scrapes > item.activated_at_scrape;
        counting.then(|| {
            item.changed_at_scrape = scrapes;
            &mut item.value
        })
    }

    /// Whether the table remembers `key` (it has, or had, a series).
    pub fn is_tracked(&self, key: &K) -> bool {
        self.items.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Table = SeriesTable<u32, String, f64>;

    fn seen(key: u32, in_top: bool) -> Seen<u32, String> {
        Seen {
            key,
            labels: format!("p{key}"),
            in_top,
            exited: false,
        }
    }

    /// Adds `j` to the item's series if it counts; false: the caller's `other`.
    fn add(table: &mut Table, s: Seen<u32, String>, now: Instant, scrapes: u64, j: f64) -> bool {
        match table.observe(s, now, scrapes) {
            Some(v) => {
                *v += j;
                true
            }
            None => false,
        }
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn a_series_counts_once_scraped_and_resumes_where_it_stopped() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(10);
        let mut table = Table::new(4);
        assert!(
            !add(&mut table, seen(1, true), t0, 0, 5.0),
            "new: at 0 until scraped"
        );
        assert_eq!(table.value_of(&1), Some(&0.0));
        assert!(add(&mut table, seen(1, true), t0, 1, 5.0));
        // Out of the top N but seen: keeps its series for the grace period.
        assert!(add(&mut table, seen(1, false), secs(t0, 5), 1, 1.0));
        table.sweep(secs(t0, 5), grace, 1);
        assert_eq!(table.value_of(&1), Some(&6.0));
        // Grace over, but no scrape has read 7.0 yet: the series stays.
        assert!(add(&mut table, seen(1, false), secs(t0, 20), 1, 1.0));
        table.sweep(secs(t0, 20), grace, 1);
        assert_eq!(table.value_of(&1), Some(&7.0));
        table.sweep(secs(t0, 20), grace, 2);
        assert_eq!(table.value_of(&1), None, "scraped and past grace: retired");
        // Its energy now goes to `other`; back in the top N it resumes at 7, and
        // counts again once a scrape has seen it there.
        assert!(!add(&mut table, seen(1, false), secs(t0, 21), 2, 2.0));
        assert!(!add(&mut table, seen(1, true), secs(t0, 22), 2, 1.0));
        assert_eq!(table.value_of(&1), Some(&7.0));
        assert!(add(&mut table, seen(1, true), secs(t0, 23), 3, 1.0));
        assert_eq!(table.value_of(&1), Some(&8.0));
    }

    #[test]
    fn exited_items_leave_after_grace_and_a_scrape() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(10);
        let mut table = Table::new(4);
        assert!(!add(&mut table, seen(7, true), t0, 2, 1.0));
        let mut exit = seen(7, true);
        exit.exited = true;
        assert!(add(&mut table, exit, t0, 3, 1.0));
        table.sweep(secs(t0, 9), grace, 4);
        assert_eq!(table.active_count(), 1);
        table.sweep(secs(t0, 11), grace, 3);
        assert_eq!(table.active_count(), 1, "final value never scraped");
        table.sweep(secs(t0, 11), grace, 4);
        assert_eq!((table.active_count(), table.tracked_count()), (0, 0));
    }

    #[test]
    fn the_cap_holds_and_evicts_the_longest_out_of_the_top() {
        let t0 = Instant::now();
        let mut table = Table::new(2);
        add(&mut table, seen(1, true), t0, 0, 1.0);
        add(&mut table, seen(2, true), t0, 0, 1.0);
        assert!(add(&mut table, seen(1, false), secs(t0, 1), 1, 1.0));
        assert!(add(&mut table, seen(2, false), secs(t0, 2), 1, 1.0));
        assert!(
            !add(&mut table, seen(3, true), secs(t0, 3), 1, 1.0),
            "no eviction before a scrape read the last values"
        );
        assert_eq!(table.value_of(&3), None);
        add(&mut table, seen(3, true), secs(t0, 3), 2, 1.0);
        assert_eq!(table.value_of(&3), Some(&0.0), "evicted 1 for it");
        assert_eq!(table.active_count(), 2);
        assert_eq!(table.value_of(&1), None);
        assert_eq!(table.value_of(&2), Some(&1.0));
        // Both remaining are in the top N: no room for a fourth.
        add(&mut table, seen(2, true), secs(t0, 4), 3, 1.0);
        add(&mut table, seen(3, true), secs(t0, 4), 3, 1.0);
        assert!(!add(&mut table, seen(4, true), secs(t0, 4), 4, 1.0));
        assert_eq!(table.value_of(&4), None);
        assert_eq!(table.active_count(), 2);
    }

    #[test]
    fn same_labels_never_export_twice() {
        let t0 = Instant::now();
        let mut table = Table::new(4);
        let labels = "pid 5".to_string();
        let a = Seen {
            key: 1,
            labels: labels.clone(),
            in_top: true,
            exited: true,
        };
        add(&mut table, a, t0, 0, 1.0);
        let b = Seen {
            key: 2,
            labels,
            in_top: true,
            exited: false,
        };
        add(&mut table, b, t0, 0, 1.0);
        assert!(table.value_of(&2).is_none(), "pid reused within grace");
        assert_eq!(table.active_count(), 1);
    }

    #[test]
    fn unseen_items_are_forgotten_after_grace() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(10);
        let mut table = Table::new(4);
        add(&mut table, seen(1, true), t0, 0, 1.0);
        table.sweep(secs(t0, 5), grace, 1);
        assert_eq!(table.active_count(), 1);
        table.sweep(secs(t0, 11), grace, 1);
        assert_eq!(table.active_count(), 0);
        assert_eq!(table.tracked_count(), 0, "idle and out of the top N");
    }
}
