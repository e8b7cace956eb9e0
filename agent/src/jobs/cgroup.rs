//! What cgroup paths say about a process: its Slurm job, pod, container and systemd unit.
//!
//! Pure string work on the paths of `/proc/PID/cgroup`, host view: Slurm's
//! `job_<N>` directories, the kubelet's `pod<uid>` (cgroupfs driver) and
//! `kubepods-…-pod<uid>.slice` (systemd driver) layouts, the runtimes' container
//! scopes, and systemd's `*.service` / `*.scope` units.

/// The container runtimes recognised, as `(scope prefix, runtime name)`. The ids
/// after the prefix must be hex, which also rules out the runtimes' monitors
/// (`libpod-conmon-<id>.scope`, `crio-conmon-<id>.scope`): they are not containers.
const SCOPE_PREFIXES: [(&str, &str); 4] = [
    ("docker-", "docker"),
    ("cri-containerd-", "containerd"),
    ("libpod-", "podman"),
    ("crio-", "cri-o"),
];

/// Shortest container id accepted: the length `docker ps` shows.
const MIN_CONTAINER_ID_LEN: usize = 12;

/// What the cgroup paths of one process reveal; each field from the first path
/// (most trusted first) that has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CgroupFacts {
    pub slurm_job_id: Option<String>,
    pub pod_uid: Option<String>,
    /// `(runtime, full id)`.
    pub container: Option<(String, String)>,
    pub systemd_unit: Option<String>,
}

impl CgroupFacts {
    pub(super) fn from_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut facts = CgroupFacts::default();
        for path in paths {
            facts.slurm_job_id = facts.slurm_job_id.or_else(|| slurm_job_id(path));
            facts.pod_uid = facts.pod_uid.or_else(|| pod_uid(path));
            facts.container = facts
                .container
                .or_else(|| container(path).map(|(rt, id)| (rt.to_string(), id.to_string())));
            facts.systemd_unit = facts.systemd_unit.or_else(|| systemd_unit(path));
        }
        facts
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

/// Slurm puts every step under `job_<N>`: `/system.slice/slurmstepd.scope/job_123/…`
/// (cgroup v2) or `/slurm/uid_1000/job_123/step_batch` (v1).
pub(super) fn slurm_job_id(path: &str) -> Option<String> {
    segments(path)
        .filter_map(|segment| segment.strip_prefix("job_"))
        .find(|id| is_digits(id))
        .map(str::to_string)
}

/// `/kubepods/burstable/pod<uid>/…` (cgroupfs driver) or
/// `/kubepods.slice/…/kubepods-burstable-pod<uid_with_underscores>.slice/…` (systemd
/// driver, which turns the uid's `-` into `_`).
pub(super) fn pod_uid(path: &str) -> Option<String> {
    let mut under_kubepods = false;
    for segment in segments(path) {
        if let Some(slice) = segment.strip_suffix(".slice") {
            let uid = slice
                .strip_prefix("kubepods")
                .and_then(|rest| rest.rsplit_once("-pod"))
                .map(|(_, uid)| uid)
                .filter(|uid| is_uid(uid));
            if let Some(uid) = uid {
                return Some(uid.replace('_', "-"));
            }
        } else if segment == "kubepods" {
            under_kubepods = true;
        } else if under_kubepods
            && let Some(uid) = segment.strip_prefix("pod").filter(|uid| is_uid(uid))
        {
            return Some(uid.to_string());
        }
    }
    None
}

/// The innermost container in `path`, as `(runtime, full id)`: a runtime's scope
/// (`docker-<id>.scope`, `cri-containerd-<id>.scope`, `libpod-<id>.scope`,
/// `crio-<id>.scope`, or the same without `.scope` under cgroupfs), `/docker/<id>`, or
/// a hex id anywhere below a `containerd` directory. The bare `/kubepods/…/pod<uid>/<id>`
/// names no runtime (docker and containerd both write it), so it is not reported.
pub(super) fn container(path: &str) -> Option<(&'static str, &str)> {
    let mut found = None;
    let mut parent = "";
    let mut under_containerd = false;
    for segment in segments(path) {
        let scope = segment.strip_suffix(".scope").unwrap_or(segment);
        let prefixed = SCOPE_PREFIXES.iter().find_map(|&(prefix, runtime)| {
            let id = scope
                .strip_prefix(prefix)
                .filter(|id| is_container_id(id))?;
            Some((runtime, id))
        });
        let bare = match () {
            () if !is_container_id(segment) => None,
            () if parent == "docker" => Some(("docker", segment)),
            () if under_containerd => Some(("containerd", segment)),
            () => None,
        };
        found = prefixed.or(bare).or(found);
        under_containerd |= segment == "containerd";
        parent = segment;
    }
    found
}

/// The last `*.service` or `*.scope` in `path` that is a unit of its own, not the
/// login/user-manager plumbing every process of a session shares.
pub(super) fn systemd_unit(path: &str) -> Option<String> {
    segments(path)
        .filter(|segment| segment.ends_with(".service") || segment.ends_with(".scope"))
        .filter(|unit| !is_plumbing_unit(unit))
        .last()
        .map(str::to_string)
}

/// `init.scope` (PID 1 or a user manager), `session-N.scope` (a login),
/// `user@N.service` and `user-runtime-dir@N.service`: shared by unrelated work.
fn is_plumbing_unit(unit: &str) -> bool {
    let session = unit
        .strip_prefix("session-")
        .and_then(|rest| rest.strip_suffix(".scope"));
    unit == "init.scope"
        || session.is_some()
        || unit.starts_with("user@")
        || unit.starts_with("user-runtime-dir@")
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Pod uids are UUIDs, or for static pods a hex hash; `_` from the systemd driver.
fn is_uid(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

fn is_container_id(text: &str) -> bool {
    text.len() >= MIN_CONTAINER_ID_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2a9c1b7d3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    const UID: &str = "0b7d8c2e-3f41-4a5b-9c6d-7e8f9a0b1c2d";

    #[test]
    fn slurm_job_ids() {
        let cases = [
            (
                "/system.slice/slurmstepd.scope/job_123/step_0/user/task_0",
                Some("123"),
            ),
            ("/slurm/uid_1000/job_123/step_batch", Some("123")),
            ("/slurm/uid_1000/job_77", Some("77")),
            ("/system.slice/job_x/y", None),
            ("/user.slice/job_.scope", None),
            ("/", None),
            ("", None),
        ];
        for (path, want) in cases {
            assert_eq!(slurm_job_id(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn pod_uids() {
        let underscored = UID.replace('-', "_");
        let cases = [
            (format!("/kubepods/burstable/pod{UID}/{ID}"), Some(UID)),
            (format!("/kubepods/pod{UID}/{ID}"), Some(UID)),
            (format!("/kubepods/besteffort/pod{UID}"), Some(UID)),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/\
                     kubepods-burstable-pod{underscored}.slice/cri-containerd-{ID}.scope"
                ),
                Some(UID),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{underscored}.slice/crio-{ID}.scope"),
                Some(UID),
            ),
            ("/kubepods.slice/kubepods-besteffort.slice".into(), None),
            (format!("/system.slice/pod{UID}"), None),
            ("/kubepods/burstable/podnot-a-uid!".into(), None),
        ];
        for (path, want) in cases {
            assert_eq!(pod_uid(&path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn containers() {
        let cases = [
            (format!("/docker/{ID}"), Some(("docker", ID))),
            (
                format!("/system.slice/docker-{ID}.scope"),
                Some(("docker", ID)),
            ),
            (
                format!("/docker/{ID}/docker/{}", &ID[..12]),
                Some(("docker", &ID[..12])),
            ),
            (
                format!("/a.slice/cri-containerd-{ID}.scope"),
                Some(("containerd", ID)),
            ),
            (
                format!("/containerd/default/{ID}"),
                Some(("containerd", ID)),
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope"),
                Some(("podman", ID)),
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                Some(("podman", ID)),
            ),
            (format!("/libpod_parent/libpod-{ID}"), Some(("podman", ID))),
            (
                format!("/kubepods.slice/x.slice/crio-{ID}.scope"),
                Some(("cri-o", ID)),
            ),
            (format!("/machine.slice/libpod-conmon-{ID}.scope"), None),
            (format!("/kubepods.slice/crio-conmon-{ID}.scope"), None),
            (format!("/kubepods/burstable/pod{UID}/{ID}"), None),
            ("/system.slice/docker.service".into(), None),
            ("/system.slice/containerd.service".into(), None),
            ("/docker/abc".into(), None),
        ];
        for (path, want) in cases {
            assert_eq!(container(&path), want, "{path}");
        }
    }

    #[test]
    fn systemd_units() {
        let cases = [
            ("/system.slice/nginx.service", Some("nginx.service")),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/train.service",
                Some("train.service"),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-x-12.scope",
                Some("app-x-12.scope"),
            ),
            ("/user.slice/user-1000.slice/session-3.scope", None),
            (
                "/user.slice/user-1000.slice/user@1000.service/init.scope",
                None,
            ),
            ("/user.slice/user-1000.slice/user@1000.service", None),
            ("/init.scope", None),
            ("/system.slice", None),
            ("/", None),
            (
                "/system.slice/slurmstepd.scope/job_1/step_0",
                Some("slurmstepd.scope"),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(systemd_unit(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn facts_take_each_field_from_the_first_path_that_has_it() {
        let paths = [
            "/system.slice/slurmd.service",
            "/slurm/uid_1000/job_9/step_0",
            "/system.slice/other.service",
        ];
        let facts = CgroupFacts::from_paths(paths);
        assert_eq!(facts.slurm_job_id.as_deref(), Some("9"));
        assert_eq!(facts.systemd_unit.as_deref(), Some("slurmd.service"));
        assert_eq!((facts.pod_uid, facts.container), (None, None));
    }
}
