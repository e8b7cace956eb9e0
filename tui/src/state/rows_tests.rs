//! `visible_rows` tests beyond those driven through `update`.
use super::*;
use agent::model::{Interval, ProcessEnergy};

fn procs(list: &[(u32, u32, f64)]) -> Processes {
    let interval = Interval {
        interval_s: 1.0,
        processes: list
            .iter()
            .map(|&(pid, ppid, joules)| ProcessEnergy {
                pid,
                ppid,
                comm: format!("c{pid}"),
                joules,
                ..ProcessEnergy::default()
            })
            .collect(),
        ..Interval::default()
    };
    let mut procs = Processes::default();
    procs.apply(&interval, 1);
    procs
}

#[test]
fn sort_keys_walk_the_columns() {
    assert_eq!(SortKey::Pid.step(-1), SortKey::Gco2PerHour);
    assert_eq!(SortKey::Watts.step(1), SortKey::Joules);
    assert!(SortKey::Watts.descending_by_default() && !SortKey::User.descending_by_default());
    assert_eq!(Grouping::Cgroup.label(), "cgroup");
}

#[test]
fn ties_keep_pid_order() {
    let rows = visible_rows(
        &procs(&[(30, 1, 1.0), (20, 1, 1.0), (10, 1, 2.0)]),
        &ViewOptions::default(),
    );
    assert_eq!(
        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![10, 20, 30]
    );
}

#[test]
fn tree_survives_orphans_and_self_parents() {
    let opts = ViewOptions {
        tree: true,
        ..ViewOptions::default()
    };
    let rows = visible_rows(&procs(&[(5, 5, 1.0), (6, 99, 3.0), (7, 6, 2.0)]), &opts);
    let shape: Vec<(u32, usize)> = rows.iter().map(|r| (r.id, r.depth)).collect();
    assert_eq!(shape, vec![(6, 0), (7, 1), (5, 0)]);
}

#[test]
fn filter_hides_the_parent_and_the_child_becomes_a_root() {
    let opts = ViewOptions {
        tree: true,
        filter: "c7".into(),
        ..ViewOptions::default()
    };
    let rows = visible_rows(&procs(&[(6, 1, 3.0), (7, 6, 2.0)]), &opts);
    assert_eq!(
        rows.iter().map(|r| (r.id, r.depth)).collect::<Vec<_>>(),
        vec![(7, 0)]
    );
}

#[test]
fn gpu_call_columns_sort_active_rows_first_and_groups_sum_them() {
    let mut interval = Interval {
        interval_s: 1.0,
        ..Interval::default()
    };
    for (pid, launches, sync_s) in [(1, 0, 0.0), (2, 500, 0.2), (3, 100, 0.9)] {
        interval.processes.push(ProcessEnergy {
            pid,
            comm: format!("c{pid}"),
            user: "ann".into(),
            gpu_launches: launches,
            gpu_sync_wait_seconds: sync_s,
            ..ProcessEnergy::default()
        });
    }
    let mut procs = Processes::default();
    procs.apply(&interval, 1);
    for (sort, want) in [
        (SortKey::GpuLaunches, [2, 3, 1]),
        (SortKey::GpuSync, [3, 2, 1]),
    ] {
        let opts = ViewOptions {
            sort,
            ..ViewOptions::default()
        };
        let ids: Vec<u32> = visible_rows(&procs, &opts).iter().map(|r| r.id).collect();
        assert_eq!(ids, want, "{sort:?}");
    }
    let opts = ViewOptions {
        grouping: Grouping::User,
        ..ViewOptions::default()
    };
    let group = visible_rows(&procs, &opts)[0].gpu_calls.unwrap();
    assert_eq!(group.launches_per_s, 600.0);
    assert!((group.sync_pct - 110.0).abs() < 1e-9, "{group:?}");
}
