//! The job's process tree, followed from Intervals alone (pid, start time, parent):
//! a process belongs to the job if greentop started it, or if its parent, as that
//! parent was known when the process started, belongs to the job. Membership is kept
//! by (pid, start_ns), so a reused pid never joins or leaves the job by accident.
//!
//! greentop is the job's child subreaper, so an orphan whose parent exited between
//! two ticks is reparented to greentop and still found; and exited processes appear
//! once more with their parent, so a chain of short-lived processes seen in one
//! interval is resolved in that interval (a fixpoint over its rows).
use std::collections::HashMap;

use agent::model::ProcessEnergy;

/// Who is in the job.
#[derive(Clone, Debug)]
pub struct JobTree {
    /// greentop's pid: its children are the job's command and reparented orphans.
    launcher_pid: u32,
    /// Children of the launcher started before this (ns since boot, whole clock
    /// ticks) belong to an earlier run.
    since_ns: u64,
    /// Every identity seen for a pid that was ever a member, oldest first:
    /// (start_ns, member).
    identities: HashMap<u32, Vec<(u64, bool)>>,
}

impl JobTree {
    /// A job whose processes are the launcher's children started at or after
    /// `since_ns`, and their descendants.
    pub fn new(launcher_pid: u32, since_ns: u64) -> JobTree {
        JobTree {
            launcher_pid,
            since_ns,
            identities: HashMap::new(),
        }
    }

    /// The rows of one interval that belong to the job.
    pub fn members<'a>(&mut self, rows: &'a [ProcessEnergy]) -> Vec<&'a ProcessEnergy> {
        for row in rows {
            // Every identity of a pid the job once had, before deciding anyone's
            // parent: a stranger now holding the pid does not pass membership on.
            if self.identities.contains_key(&row.pid) {
                self.record(row.pid, row.start_ns, false);
            }
        }
        let mut member = vec![false; rows.len()];
        loop {
            let mut grew = false;
            for (i, row) in rows.iter().enumerate() {
                if !member[i] && self.joins(row) {
                    member[i] = true;
                    self.record(row.pid, row.start_ns, true);
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        rows.iter()
            .zip(member)
            .filter_map(|(row, m)| m.then_some(row))
            .collect()
    }

    /// Whether (pid, start_ns) is known to be in the job.
    pub fn contains(&self, pid: u32, start_ns: u64) -> bool {
        self.identities
            .get(&pid)
            .is_some_and(|ids| ids.iter().any(|&(s, m)| m && s == start_ns))
    }

    fn joins(&self, row: &ProcessEnergy) -> bool {
        if self.contains(row.pid, row.start_ns) {
            return true;
        }
        if row.ppid == self.launcher_pid {
            return row.start_ns >= self.since_ns;
        }
        // The parent's identity when the row started: the latest not after it.
        self.identities.get(&row.ppid).is_some_and(|ids| {
            ids.iter()
                .rev()
                .find(|&&(start, _)| start <= row.start_ns)
                .is_some_and(|&(_, member)| member)
        })
    }

    fn record(&mut self, pid: u32, start_ns: u64, member: bool) {
        let ids = self.identities.entry(pid).or_default();
        if let Some(slot) = ids.iter_mut().find(|(s, _)| *s == start_ns) {
            slot.1 |= member;
            return;
        }
        ids.push((start_ns, member));
        ids.sort_unstable_by_key(|&(s, _)| s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREENTOP: u32 = 100;
    const SINCE: u64 = 5_000;

    fn row(pid: u32, ppid: u32, start_ns: u64) -> ProcessEnergy {
        ProcessEnergy {
            pid,
            ppid,
            start_ns,
            ..ProcessEnergy::default()
        }
    }

    fn pids(tree: &mut JobTree, rows: &[ProcessEnergy]) -> Vec<u32> {
        tree.members(rows).iter().map(|p| p.pid).collect()
    }

    #[test]
    fn the_command_and_its_descendants_are_members() {
        let mut tree = JobTree::new(GREENTOP, SINCE);
        let first = [row(1, 0, 10), row(200, GREENTOP, SINCE), row(300, 1, 6_000)];
        assert_eq!(pids(&mut tree, &first), [200]);
        // Listed before their parents, in one interval: the fixpoint finds them.
        let second = [
            row(202, 201, 6_200),
            row(201, 200, 6_100),
            row(203, 300, 6_300),
        ];
        assert_eq!(pids(&mut tree, &second), [202, 201]);
        // A later interval: membership stuck to (pid, start).
        assert_eq!(pids(&mut tree, &[row(201, 1, 6_100)]), [201]);
    }

    #[test]
    fn orphans_reparented_to_greentop_stay_in_the_job() {
        let mut tree = JobTree::new(GREENTOP, SINCE);
        assert_eq!(pids(&mut tree, &[row(200, GREENTOP, SINCE)]), [200]);
        // Parent exited between ticks; the grandchild is first seen as greentop's.
        assert_eq!(pids(&mut tree, &[row(250, GREENTOP, 7_000)]), [250]);
        // An earlier run's orphan, also greentop's child, is not this run's.
        assert!(pids(&mut tree, &[row(150, GREENTOP, SINCE - 10)]).is_empty());
    }

    #[test]
    fn a_reused_pid_is_a_stranger() {
        let mut tree = JobTree::new(GREENTOP, SINCE);
        let job = [row(200, GREENTOP, SINCE), row(201, 200, 6_000)];
        assert_eq!(pids(&mut tree, &job), [200, 201]);
        // 201 exited; a stranger got pid 201, and forks.
        let strangers = [row(201, 1, 9_000), row(400, 201, 9_500)];
        assert!(pids(&mut tree, &strangers).is_empty());
        // A child the old 201 forked before it exited is still the job's.
        assert_eq!(pids(&mut tree, &[row(401, 201, 8_000)]), [401]);
        // The stranger and its child in the interval where both first show up.
        let mut tree = JobTree::new(GREENTOP, SINCE);
        assert_eq!(pids(&mut tree, &job), [200, 201]);
        let strangers = [row(500, 201, 9_500), row(201, 1, 9_000)];
        assert!(pids(&mut tree, &strangers).is_empty());
        assert!(tree.contains(201, 6_000) && !tree.contains(201, 9_000));
    }
}
