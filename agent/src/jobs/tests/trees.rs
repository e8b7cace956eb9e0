//! Process-tree jobs and the resolver's caches, on fixture `/proc` trees.
use std::fs;

use super::*;

/// sshd 100 → bash 200 → torchrun 300 → workers 301, 302 → DataLoaders 401, 402.
fn torchrun_tree() -> (FakeProc, Vec<Proc<'static>>) {
    let procs = vec![
        p(100, 1, "sshd"),
        p(200, 100, "bash"),
        p(300, 200, "torchrun"),
        p(301, 300, "python"),
        p(302, 300, "python"),
        p(401, 301, "pt_data_worker"),
        p(402, 302, "pt_data_worker"),
    ];
    let fake = FakeProc::new();
    for &p in &procs {
        fake.process(p, "0::/user.slice/user-1000.slice/session-7.scope\n");
    }
    (fake, procs)
}

#[test]
fn torchrun_workers_and_dataloaders_are_one_job() {
    let (fake, procs) = torchrun_tree();
    let cgroup = "/user.slice/user-1000.slice/session-7.scope";
    // Children first, so the walk has to read their parents from /proc.
    let mut resolver = JobResolver::new(fake.root());
    for &p in procs.iter().rev().take(5) {
        let info = resolve(&mut resolver, p, cgroup);
        assert_eq!(
            info.job.as_deref(),
            Some("tree:torchrun:300"),
            "pid {}",
            p.pid
        );
        assert_eq!(
            (info.kind, info.tree_root),
            (JobKind::ProcessTree, Some(300))
        );
    }
    let bash = resolve(&mut resolver, procs[1], cgroup);
    assert_eq!(bash.job.as_deref(), Some("tree:bash:200"));
    // Parents first: everything above the children is cached, nothing is read.
    let mut resolver = JobResolver::new(fake.root());
    for &p in &procs[1..] {
        resolve(&mut resolver, p, cgroup);
    }
    let reads = resolver.file_reads;
    let loader = resolve(&mut resolver, procs[6], cgroup);
    assert_eq!(loader.job.as_deref(), Some("tree:torchrun:300"));
    assert_eq!(
        resolver.file_reads, reads,
        "no stat read for cached parents"
    );
}

#[test]
fn a_process_under_init_is_its_own_root() {
    let info = resolve_one("0::/user.slice/user-1000.slice/session-1.scope\n", None);
    let want = (JobKind::ProcessTree, Some(4242), Some("tree:python:4242"));
    assert_eq!((info.kind, info.tree_root, info.job.as_deref()), want);
}

#[test]
fn kernel_threads_and_init_have_no_job() {
    let fake = FakeProc::new();
    let cases = [
        (2, 0, "kthreadd", "0::/\n"),
        (57, 2, "kworker/0:1", "0::/\n"),
        (1, 0, "systemd", "0::/init.scope\n"),
    ];
    for (pid, ppid, comm, file) in cases {
        fake.process(Proc { pid, ppid, comm }, file);
        let mut resolver = JobResolver::new(fake.root());
        let info = resolver.resolve(pid, START_NS, ppid, comm, caller_path(file));
        assert_eq!(info, JobInfo::default(), "{comm}");
    }
    let mut resolver = JobResolver::new(fake.root());
    resolver.resolve(57, START_NS, 2, "kworker/0:1", "/");
    assert_eq!(resolver.file_reads, 0, "kernel threads read nothing");
}

#[test]
fn a_missing_parent_ends_the_walk_there() {
    let fake = FakeProc::new();
    let cgroup = "0::/user.slice/user-1000.slice/session-1.scope\n";
    // 600 → 601 → 602 (never existed); 700 → 699 (gone); 800 → 801 (garbage stat).
    let procs = [
        p(601, 602, "launcher"),
        p(600, 601, "python"),
        p(700, 699, "orphan"),
        p(800, 801, "python"),
    ];
    for &p in &procs {
        fake.process(p, cgroup);
    }
    fs::create_dir_all(fake.root().join("801")).unwrap();
    fs::write(fake.root().join("801/stat"), "801 (x").unwrap();
    let mut resolver = JobResolver::new(fake.root());
    let cases = [
        (procs[1], "tree:launcher:601"),
        (procs[2], "tree:orphan:700"),
        (procs[3], "tree:python:800"),
    ];
    for (p, want) in cases {
        let info = resolve(&mut resolver, p, caller_path(cgroup));
        assert_eq!(info.job.as_deref(), Some(want), "pid {}", p.pid);
    }
}

#[test]
fn a_second_resolve_reads_nothing() {
    let (fake, procs) = torchrun_tree();
    let mut resolver = JobResolver::new(fake.root());
    let cgroup = "/system.slice/train.service";
    let first = resolve(&mut resolver, procs[5], cgroup);
    let reads = resolver.file_reads;
    assert!(reads > 0);
    for p in &procs {
        fake.remove(p.pid);
    }
    let second = resolve(&mut resolver, procs[5], cgroup);
    assert_eq!(second, first);
    assert_eq!(resolver.file_reads, reads);
}

#[test]
fn a_reused_pid_exec_or_forget_resolves_again() {
    let fake = FakeProc::new();
    let old = p(900, 1, "python");
    fake.process(old, "0::/system.slice/old.service\n");
    let mut resolver = JobResolver::new(fake.root());
    let job = |info: JobInfo| info.job;
    let first = resolver.resolve(900, 1, 1, "python", "/system.slice/old.service");
    assert_eq!(job(first).as_deref(), Some("systemd:old.service"));
    // pid 900 exits and is reused by a docker container's process.
    fake.process(old, &format!("0::/system.slice/docker-{ID}.scope\n"));
    let cgroup = format!("/system.slice/docker-{ID}.scope");
    let same = resolver.resolve(900, 1, 1, "python", &cgroup);
    assert_eq!(job(same).as_deref(), Some("systemd:old.service"), "cached");
    let reused = resolver.resolve(900, 2, 1, "python", &cgroup);
    assert_eq!(job(reused).as_deref(), Some("docker:4f2a9c1b7d3e"));
    resolver.forget(900, 1);
    let again = resolver.resolve(900, 1, 1, "python", &cgroup);
    assert_eq!(job(again).as_deref(), Some("docker:4f2a9c1b7d3e"));
    // An exec keeps pid and start time but changes the tree label.
    fake.process(old, "0::/user.slice/user-1000.slice/session-1.scope\n");
    let session = "/user.slice/user-1000.slice/session-1.scope";
    resolver.forget(900, 2);
    let before = resolver.resolve(900, 2, 1, "bash", session);
    assert_eq!(job(before).as_deref(), Some("tree:bash:900"));
    let after = resolver.resolve(900, 2, 1, "torchrun", session);
    assert_eq!(job(after).as_deref(), Some("tree:torchrun:900"));
}

#[test]
fn forget_keeps_the_caches_bounded() {
    let (fake, procs) = torchrun_tree();
    let mut resolver = JobResolver::new(fake.root());
    for &p in &procs {
        resolve(&mut resolver, p, "/");
    }
    for &p in &procs {
        resolver.forget(p.pid, START_NS);
    }
    assert_eq!((resolver.jobs.len(), resolver.parents.len()), (0, 0));
    let mut map = HashMap::new();
    for key in 0..MAX_CACHED + 1 {
        bounded_insert(&mut map, key, ());
    }
    assert_eq!(map.len(), 1, "cleared when full");
}
