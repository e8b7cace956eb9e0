//! The NVIDIA ioctl counter, without NVIDIA hardware: character device nodes with the
//! driver's real major (195) and a stand-in for `nvidia-uvm`'s dynamic one, made with
//! mknod and opened O_PATH (no driver needed). The ioctls fail (EBADF), but the syscall
//! happens, and that is what is counted, per thread, exactly.
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use agent::probes::gpu::{GpuCalls, GpuProbeMode};
use agent::probes::{CpuLedger, LedgerSample};
use greentop_tests::cuda::{NVIDIA_MAJOR, NVIDIACTL_MINOR, device_node};
use greentop_tests::*;

/// A character major no driver registered on this machine, standing in for
/// `nvidia-uvm`'s dynamic one.
fn free_major() -> u32 {
    let devices = std::fs::read_to_string("/proc/devices").expect("/proc/devices");
    let used: Vec<u32> = devices
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (400..=511)
        .rev()
        .find(|m| !used.contains(m))
        .expect("a free major")
}

fn open_path(path: &Path) -> OwnedFd {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; open returns a new fd or -1.
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    assert!(
        fd >= 0,
        "open {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a fresh descriptor we own.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `times` ioctls on `fd` (their result does not matter; the syscall does).
fn ioctls(fd: &impl AsRawFd, times: u64) {
    for _ in 0..times {
        // SAFETY: TCGETS with a valid buffer; on a non-tty the kernel only fails.
        let mut termios: libc::termios = unsafe { std::mem::zeroed() };
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS, &mut termios) };
    }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

fn calls_of(samples: &[LedgerSample], tid: u32) -> GpuCalls {
    let mut sum = GpuCalls::default();
    for row in rows_for(samples, std::process::id()) {
        row.threads
            .iter()
            .filter(|t| t.tid == tid)
            .for_each(|t| sum.add(&t.gpu));
    }
    sum
}

#[test]
fn ioctls_on_nvidia_devices_are_counted_per_thread_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let uvm_major = free_major();
    let mut opts = options();
    opts.gpu.mode = GpuProbeMode::Ctx;
    opts.gpu.device_majors = Some(vec![NVIDIA_MAJOR, uvm_major]);
    let mut ledger = ledger_with(&opts);
    let ctl = dir.path();
    let nvidiactl = device_node(
        ctl,
        "nvidiactl",
        libc::S_IFCHR,
        NVIDIA_MAJOR,
        NVIDIACTL_MINOR,
    );
    let nvidia0 = device_node(ctl, "nvidia0", libc::S_IFCHR, NVIDIA_MAJOR, 0);
    let uvm = device_node(ctl, "nvidia-uvm", libc::S_IFCHR, uvm_major, 0);
    let block = device_node(ctl, "block195", libc::S_IFBLK, NVIDIA_MAJOR, 1);
    let mut samples = vec![sample(&mut ledger)];
    let first = std::thread::spawn(move || {
        let ctl = open_path(&nvidiactl);
        ioctls(&ctl, 30);
        ioctls(&open_path(&uvm), 20);
        ioctls(&open_path(&block), 40);
        ioctls(&File::open("/dev/null").unwrap(), 50);
        // The fd number is reused for /dev/null: the table walk sees the new file.
        let number = ctl.as_raw_fd();
        drop(ctl);
        let null = File::open("/dev/null").unwrap();
        assert_eq!(null.as_raw_fd(), number, "lowest free fd reused");
        ioctls(&null, 25);
        gettid()
    });
    let second = std::thread::spawn(move || {
        let nvidia0 = open_path(&nvidia0);
        ioctls(&nvidia0, 10);
        ioctls(&nvidia0.try_clone().unwrap(), 5);
        gettid()
    });
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    samples.push(sample(&mut ledger));
    assert_eq!(
        calls_of(&samples, first).ioctls,
        50,
        "30 nvidiactl + 20 uvm"
    );
    assert_eq!(
        calls_of(&samples, second).ioctls,
        15,
        "10 + 5 through a dup"
    );
    let status = samples.last().unwrap().gpu.clone().unwrap();
    assert_eq!(
        status.ioctl_counter.as_deref(),
        Some("tp_btf"),
        "{status:?}"
    );
}

#[test]
fn without_btf_the_counter_is_not_attached_and_says_why() {
    let btf_less = tempfile::tempdir().unwrap();
    let mut opts = agent::probes::loader::LoadOptions::new(btf_less.path(), Path::new("/proc"));
    opts.gpu.device_majors = Some(vec![NVIDIA_MAJOR]);
    let mut ledger = ledger_with(&opts);
    assert_eq!(CpuLedger::fidelity(&ledger).label(), "ebpf-raw_tp");
    let status = sample(&mut ledger).gpu.expect("GPU probes on by default");
    assert_eq!(status.ioctl_counter, None, "no BTF, no fd-table layout");
    assert!(
        status.notes.iter().any(|n| n
            == "NVIDIA ioctls are not counted: no kernel BTF to find the fd table's layout in"),
        "{status:?}"
    );
}

#[test]
fn without_an_nvidia_driver_the_counter_is_not_attached_and_says_why() {
    let nvidia = std::fs::read_to_string("/proc/devices")
        .unwrap()
        .lines()
        .any(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|n| n.starts_with("nvidia"))
        });
    let mut ledger = ledger_with(&options());
    let status = sample(&mut ledger).gpu.expect("GPU probes on by default");
    if nvidia {
        assert!(
            status.ioctl_counter.is_some(),
            "a driver is loaded: {status:?}"
        );
    } else {
        assert_eq!(status.ioctl_counter, None);
        assert!(
            status
                .notes
                .iter()
                .any(|n| n.contains("no NVIDIA driver (no nvidia major in /proc/devices)")),
            "{status:?}"
        );
    }
}
