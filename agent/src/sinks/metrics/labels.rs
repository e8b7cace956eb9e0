//! Label sets of the exported series and how a process's are made: pid, comm, job,
//! cgroup, and the pod and container its cgroup names (docs/metrics.md#labels).
use prometheus_client::encoding::EncodeLabelSet;

use crate::jobs::{SHORT_CONTAINER_ID_LEN, workload_of};
use crate::model::ProcessEnergy;

/// `pid` of the series of processes without one of their own; `job` of jobs without one.
pub const OTHER: &str = "other";
/// `job` of processes that belong to none (kernel threads, pid 1).
pub const JOB_NONE: &str = "none";

/// One process's series.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcessLabels {
    pub pid: String,
    pub comm: String,
    pub job: String,
    pub cgroup: String,
    /// The Kubernetes pod uid, from the cgroup path (empty outside pods).
    pub pod_uid: String,
    /// The container id, first 12 hex digits (empty outside containers).
    pub container_id: String,
}

/// One job's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: String,
}

/// One energy domain's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DomainLabels {
    pub domain: String,
    pub index: String,
    pub source: String,
    pub measured: String,
}

/// The labels of a process's own series.
pub fn process_labels(p: &ProcessEnergy) -> ProcessLabels {
    let workload = workload_of(&p.cgroup);
    let container_id = workload
        .container
        .map(|(_, id)| id.chars().take(SHORT_CONTAINER_ID_LEN).collect())
        .unwrap_or_default();
    ProcessLabels {
        pid: p.pid.to_string(),
        comm: p.comm.clone(),
        job: p.job.clone().unwrap_or_else(|| JOB_NONE.to_string()),
        cgroup: p.cgroup.clone(),
        pod_uid: workload.pod_uid.unwrap_or_default(),
        container_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_and_container_come_from_the_cgroup() {
        let uid = "0b7d8c2e_3f41_4a5b_9c6d_7e8f9a0b1c2d";
        let id = "4f2a9c1b7d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
        let p = ProcessEnergy {
            pid: 42,
            comm: "python".into(),
            job: Some("k8s:0b7d8c2e-3f41-4a5b-9c6d-7e8f9a0b1c2d".into()),
            cgroup: format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{id}.scope"
            ),
            ..ProcessEnergy::default()
        };
        let labels = process_labels(&p);
        assert_eq!(labels.pid, "42");
        assert_eq!(labels.pod_uid, "0b7d8c2e-3f41-4a5b-9c6d-7e8f9a0b1c2d");
        assert_eq!(labels.container_id, "4f2a9c1b7d3e");
        let bare = process_labels(&ProcessEnergy {
            pid: 2,
            cgroup: "/".into(),
            ..ProcessEnergy::default()
        });
        assert_eq!((bare.job.as_str(), bare.pod_uid.as_str()), ("none", ""));
    }
}
