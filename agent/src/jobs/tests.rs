//! Tests of job resolution on fixture `/proc` trees written to temporary directories.
use std::fs;
use std::path::Path;

use super::*;

mod trees;

const ID: &str = "4f2a9c1b7d3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
const UID: &str = "0b7d8c2e-3f41-4a5b-9c6d-7e8f9a0b1c2d";
const START_NS: u64 = 5_000_000_000;

/// A fixture `/proc` in a temporary directory.
struct FakeProc {
    dir: tempfile::TempDir,
}

/// One process of a fixture: what the caller passes to `resolve`.
#[derive(Clone, Copy)]
struct Proc<'a> {
    pid: u32,
    ppid: u32,
    comm: &'a str,
}

impl FakeProc {
    fn new() -> Self {
        FakeProc {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `PID/stat` and `PID/cgroup` (the given file text).
    fn process(&self, proc: Proc, cgroup_file: &str) {
        let dir = self.root().join(proc.pid.to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stat"), stat_line(proc)).unwrap();
        fs::write(dir.join("cgroup"), cgroup_file).unwrap();
    }

    /// Writes `PID/environ` from `KEY=value` pairs, NUL-separated as the kernel does.
    fn environ(&self, pid: u32, vars: &[&str]) {
        let mut bytes = vars.join("\0").into_bytes();
        bytes.push(0);
        fs::write(self.root().join(format!("{pid}/environ")), bytes).unwrap();
    }

    fn remove(&self, pid: u32) {
        fs::remove_dir_all(self.root().join(pid.to_string())).unwrap();
    }
}

fn p(pid: u32, ppid: u32, comm: &str) -> Proc<'_> {
    Proc { pid, ppid, comm }
}

/// A real-format stat line: state S, start time 500 ticks, last CPU 1.
fn stat_line(proc: Proc) -> String {
    let mut fields = vec!["0".to_string(); 50];
    fields[0] = "S".into();
    fields[1] = proc.ppid.to_string();
    fields[19] = "500".into();
    fields[36] = "1".into();
    format!("{} ({}) {}\n", proc.pid, proc.comm, fields.join(" "))
}

/// The unified-or-systemd path a caller takes from a cgroup file, as the ledger does.
fn caller_path(cgroup_file: &str) -> &str {
    let paths = || cgroup_file.lines().filter_map(|l| l.splitn(3, ':').nth(2));
    let unified = cgroup_file.lines().find_map(|l| l.strip_prefix("0::"));
    let systemd = || {
        let line = cgroup_file.lines().find(|l| l.contains(":name=systemd:"))?;
        line.splitn(3, ':').nth(2)
    };
    unified
        .or_else(systemd)
        .or_else(|| paths().next())
        .unwrap_or("")
}

fn resolve(resolver: &mut JobResolver, proc: Proc, cgroup: &str) -> JobInfo {
    resolver.resolve(proc.pid, START_NS, proc.ppid, proc.comm, cgroup)
}

/// A python process under pid 1 with `cgroup_file`; returns its job.
fn resolve_one(cgroup_file: &str, environ: Option<&[&str]>) -> JobInfo {
    let proc = FakeProc::new();
    let python = p(4242, 1, "python");
    proc.process(python, cgroup_file);
    if let Some(vars) = environ {
        proc.environ(python.pid, vars);
    }
    let mut resolver = JobResolver::new(proc.root());
    resolve(&mut resolver, python, caller_path(cgroup_file))
}

/// Resolves a python under init in each cgroup file; checks label, kind, tree root.
fn check_labels<F: AsRef<str>, J: AsRef<str>>(cases: &[(F, J, JobKind)]) {
    for (file, want_job, want_kind) in cases {
        let file = file.as_ref();
        let info = resolve_one(file, None);
        assert_eq!(info.job.as_deref(), Some(want_job.as_ref()), "{file}");
        assert_eq!(info.kind, *want_kind, "{file}");
        assert_eq!(info.tree_root, Some(4242), "{file}");
    }
}

#[test]
fn container_and_pod_cgroup_paths() {
    let us = UID.replace('-', "_");
    let short = "4f2a9c1b7d3e";
    let pod = format!("k8s:{UID}");
    let conmon = format!("systemd:libpod-conmon-{ID}.scope");
    let cases = [
        (
            format!("0::/docker/{ID}\n"),
            format!("docker:{short}"),
            JobKind::Container,
        ),
        (
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("docker:{short}"),
            JobKind::Container,
        ),
        (
            format!("0::/system.slice/containerd.service/containerd/default/{ID}\n"),
            format!("containerd:{short}"),
            JobKind::Container,
        ),
        (
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!("podman:{short}"),
            JobKind::Container,
        ),
        (
            format!("0::/machine.slice/libpod-conmon-{ID}.scope\n"),
            conmon,
            JobKind::Systemd,
        ),
        (
            format!("0::/system.slice/crio-{ID}.scope\n"),
            format!("cri-o:{short}"),
            JobKind::Container,
        ),
        (
            format!("0::/kubepods/burstable/pod{UID}/{ID}\n"),
            pod.clone(),
            JobKind::Kubernetes,
        ),
        (
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/\
                 kubepods-burstable-pod{us}.slice/cri-containerd-{ID}.scope\n"
            ),
            pod.clone(),
            JobKind::Kubernetes,
        ),
    ];
    check_labels(&cases);
}

#[test]
fn slurm_systemd_and_plain_cgroup_paths() {
    let v1_slurm = "12:cpuset:/slurm/uid_1000/job_123/step_batch\n\
                    11:memory:/slurm/uid_1000/job_123/step_batch\n\
                    1:name=systemd:/system.slice/slurmd.service\n";
    let user_unit = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/train.service\n";
    let cases = [
        (
            "0::/system.slice/slurmstepd.scope/job_123/step_0/user/task_0\n",
            "slurm:123",
            JobKind::Slurm,
        ),
        (v1_slurm, "slurm:123", JobKind::Slurm),
        (
            "0::/system.slice/nginx.service\n",
            "systemd:nginx.service",
            JobKind::Systemd,
        ),
        (user_unit, "systemd:train.service", JobKind::Systemd),
        (
            "0::/user.slice/user-1000.slice/session-4.scope\n",
            "tree:python:4242",
            JobKind::ProcessTree,
        ),
        ("0::/init.scope\n", "tree:python:4242", JobKind::ProcessTree),
        ("", "tree:python:4242", JobKind::ProcessTree),
    ];
    check_labels(&cases);
}

#[test]
fn every_field_is_filled_not_only_the_label() {
    let us = UID.replace('-', "_");
    let file = format!(
        "0::/kubepods.slice/kubepods-besteffort.slice/\
         kubepods-besteffort-pod{us}.slice/cri-containerd-{ID}.scope\n"
    );
    let info = resolve_one(&file, None);
    let want = JobInfo {
        job: Some(format!("k8s:{UID}")),
        kind: JobKind::Kubernetes,
        slurm_job_id: None,
        pod_uid: Some(UID.into()),
        container: Some(("containerd".into(), ID.into())),
        systemd_unit: Some(format!("cri-containerd-{ID}.scope")),
        tree_root: Some(4242),
    };
    assert_eq!(info, want);
}

#[test]
fn slurm_from_environ() {
    let session = "0::/user.slice/user-1000.slice/session-2.scope\n";
    let cases: [(&[&str], Option<&str>); 5] = [
        (
            &["PATH=/bin", "SLURM_JOB_ID=4711", "HOME=/"],
            Some("slurm:4711"),
        ),
        (&["SLURM_JOBID=12", "SLURM_JOB_ID=13"], Some("slurm:13")),
        (&["SLURM_JOBID=12"], Some("slurm:12")),
        (
            &["SLURM_JOB_ID=", "X=SLURM_JOB_ID=9"],
            Some("tree:python:4242"),
        ),
        (&["SLURM_JOB_ID=12abc"], Some("tree:python:4242")),
    ];
    for (vars, want) in cases {
        let info = resolve_one(session, Some(vars));
        assert_eq!(info.job.as_deref(), want, "{vars:?}");
    }
    // The cgroup outranks the environment, which a user can set to anything.
    let stepd = "0::/system.slice/slurmstepd.scope/job_5/step_0/user/task_0\n";
    let info = resolve_one(stepd, Some(&["SLURM_JOB_ID=6"]));
    assert_eq!(info.slurm_job_id.as_deref(), Some("5"));
}

#[test]
fn cgroup_file_lines() {
    let cases: [(&str, &[&str]); 4] = [
        ("0::/a.scope\n", &["/a.scope"]),
        (
            "12:cpuset:/slurm/job_1\n1:name=systemd:/b:c\n0::/\n",
            &["/slurm/job_1", "/b:c", "/"],
        ),
        ("garbage\n\n3:cpu:\n", &[]),
        ("", &[]),
    ];
    for (text, want) in cases {
        let got: Vec<&str> = cgroup_lines(text.as_bytes()).collect();
        assert_eq!(got, want, "{text:?}");
    }
}
