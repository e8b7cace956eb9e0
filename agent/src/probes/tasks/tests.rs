//! The process table fed by hand-made lifecycle events.
use super::*;

fn event(kind: u32, tgid: u32, tid: u32, comm: &str) -> LifecycleEvent {
    let mut raw = [0u8; agent_common::COMM_LEN];
    raw[..comm.len()].copy_from_slice(comm.as_bytes());
    LifecycleEvent {
        kind,
        tgid,
        tid,
        uid: 1000,
        comm: raw,
        ..LifecycleEvent::default()
    }
}

#[test]
fn a_process_gone_before_proc_was_read_is_named_by_its_pending_exit() {
    let root = tempfile::tempdir().unwrap();
    let mut tasks = TaskTable::new(root.path());
    tasks.process(4242);
    assert_eq!(tasks.get(4242).unwrap().comm, "", "/proc had nothing");
    let pending = [
        event(event_kind::EXIT, 4242, 4243, "worker"),
        event(event_kind::EXIT, 4242, 4242, "train"),
    ];
    tasks.learn_from_pending(4242, &pending);
    let info = tasks.get(4242).unwrap();
    assert_eq!(
        (info.comm.as_str(), info.uid),
        ("train", 1000),
        "the leader's name wins"
    );
    assert!(
        !info.exited(),
        "learning is not applying: the exit comes next tick"
    );
}

#[test]
fn renames_reach_threads_and_the_leader() {
    let root = tempfile::tempdir().unwrap();
    let mut tasks = TaskTable::new(root.path());
    let rename = |tgid, tid, comm| LifecycleEvent {
        child_tgid: tgid,
        child_tid: tid,
        ..event(event_kind::RENAME, 1, 1, comm)
    };
    tasks.apply(&rename(60, 61, "dataloader-0"));
    tasks.apply(&rename(60, 60, "trainer"));
    assert_eq!(tasks.thread_comm(60, 61), "dataloader-0");
    assert_eq!(tasks.get(60).unwrap().comm, "trainer");
}

#[test]
fn forks_exits_and_pid_reuse() {
    let root = tempfile::tempdir().unwrap();
    let mut tasks = TaskTable::new(root.path());
    let fork = LifecycleEvent {
        child_tid: 50,
        child_tgid: 50,
        ts_ns: 7,
        ..event(event_kind::FORK, 10, 10, "bash")
    };
    tasks.apply(&fork);
    tasks.apply(&event(event_kind::EXEC, 50, 50, "python"));
    let info = tasks.get(50).unwrap();
    assert_eq!(
        (info.comm.as_str(), info.ppid, info.start_ns),
        ("python", 10, 7)
    );
    tasks.apply(&event(event_kind::EXIT, 50, 50, "python"));
    assert!(tasks.get(50).unwrap().exited());
    let again = LifecycleEvent { ts_ns: 9, ..fork };
    tasks.apply(&again);
    assert_eq!(
        tasks.displaced.len(),
        1,
        "the exited process is still reported"
    );
    assert_eq!(
        tasks.get(50).unwrap().start_ns,
        9,
        "the new process has its own start"
    );
}

#[test]
fn a_thread_that_execs_keeps_its_process_alive() {
    let root = tempfile::tempdir().unwrap();
    let mut tasks = TaskTable::new(root.path());
    // Process 60 and its thread 61 predate the table, and neither has run since. 61
    // execs: the old leader exits, then 61 takes over pid 60.
    tasks.apply(&event(event_kind::EXIT, 60, 60, "launcher"));
    tasks.apply(&event(event_kind::EXEC, 60, 60, "trainer"));
    let info = tasks.get(60).unwrap();
    assert!(!info.exited(), "an exec is not an exit");
    assert_eq!(info.comm, "trainer");
    assert_eq!(tasks.exited_this_tick().count(), 0);
    tasks.end_tick();
    for _ in 0..=GRACE_TICKS {
        tasks.end_tick();
    }
    assert!(tasks.get(60).is_some(), "a live process is not forgotten");
    tasks.apply(&event(event_kind::EXIT, 60, 60, "trainer"));
    assert!(tasks.get(60).unwrap().exited(), "and its own exit ends it");
    assert_eq!(tasks.exited_this_tick().count(), 1);
}
