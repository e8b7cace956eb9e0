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
