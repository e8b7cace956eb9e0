//! A process's or thread's GPU activity from the eBPF probes as rates over the last
//! interval: CUDA context switches, launches and ioctls per second, and the share of
//! wall time its threads spent blocked in sync calls (like CPU%, above 100 with
//! several threads waiting).
use agent::model::{ProcessEnergy, ThreadEnergy};

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuCallRates {
    pub ctx_per_s: f64,
    pub launches_per_s: f64,
    /// Time blocked in sync calls, percent of the interval.
    pub sync_pct: f64,
    pub ioctls_per_s: f64,
}

impl GpuCallRates {
    /// The rates, or `None` when there was no GPU activity at all.
    fn new(ctx: u64, launches: u64, sync_s: f64, ioctls: u64, wall_s: f64) -> Option<Self> {
        if ctx == 0 && launches == 0 && sync_s <= 0.0 && ioctls == 0 {
            return None;
        }
        Some(GpuCallRates {
            ctx_per_s: ctx as f64 / wall_s,
            launches_per_s: launches as f64 / wall_s,
            sync_pct: 100.0 * sync_s / wall_s,
            ioctls_per_s: ioctls as f64 / wall_s,
        })
    }

    pub fn of_process(p: &ProcessEnergy, wall_s: f64) -> Option<Self> {
        Self::new(
            p.gpu_ctx_switches,
            p.gpu_launches,
            p.gpu_sync_wait_seconds,
            p.gpu_ioctls,
            wall_s,
        )
    }

    pub fn of_thread(t: &ThreadEnergy, wall_s: f64) -> Option<Self> {
        Self::new(
            t.gpu_ctx_switches,
            t.gpu_launches,
            t.gpu_sync_wait_seconds,
            t.gpu_ioctls,
            wall_s,
        )
    }

    /// Sums two rows' rates (groups); `None` only if both are.
    pub fn sum(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (None, None) => None,
            (a, b) => {
                let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
                Some(GpuCallRates {
                    ctx_per_s: a.ctx_per_s + b.ctx_per_s,
                    launches_per_s: a.launches_per_s + b.launches_per_s,
                    sync_pct: a.sync_pct + b.sync_pct,
                    ioctls_per_s: a.ioctls_per_s + b.ioctls_per_s,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_of_the_interval() {
        let p = ProcessEnergy {
            gpu_ctx_switches: 4,
            gpu_launches: 3000,
            gpu_sync_wait_seconds: 1.5,
            gpu_ioctls: 10,
            ..ProcessEnergy::default()
        };
        let rates = GpuCallRates::of_process(&p, 2.0).unwrap();
        assert_eq!(
            rates,
            GpuCallRates {
                ctx_per_s: 2.0,
                launches_per_s: 1500.0,
                sync_pct: 75.0,
                ioctls_per_s: 5.0
            }
        );
        assert_eq!(
            GpuCallRates::of_process(&ProcessEnergy::default(), 1.0),
            None
        );
        let sum = GpuCallRates::sum(Some(rates), None).unwrap();
        assert_eq!(sum, rates);
        assert_eq!(
            GpuCallRates::sum(Some(rates), Some(rates))
                .unwrap()
                .sync_pct,
            150.0
        );
        assert_eq!(GpuCallRates::sum(None, None), None);
    }
}
