//! Workload generator for the integration tests and benchmarks.
//!
//! `gt-load busy SECS`            spin on one thread for SECS of CPU-ish wall time
//! `gt-load threads N SECS`       N named threads (`worker-I`), each spinning until it
//!                                has used SECS of CPU time
//! `gt-load burst N MS`           N children in turn, each `busy-ms MS`; prints the
//!                                children's CPU ns from getrusage(RUSAGE_CHILDREN),
//!                                then `pids P1 P2 …`
//! `gt-load busy-ms MS`           spin for MS milliseconds of own CPU time
//! `gt-load pingpong SECS`        two threads bouncing a byte over pipes (context switches)
//! `gt-load wakers N SECS US HZ [--gated]`
//!                                N processes, each waking HZ times a second for US µs
//!                                of spinning, for SECS (see `greentop_tests::wakers`)
//! `gt-load thread-exec MS`       a second thread spins MS of CPU, then execs
//!                                `busy-ms MS` (it takes over the leader's pid)
//! `gt-load thread-exec-when-told MS`
//!                                prints `ready` once a second thread waits for a
//!                                line on stdin; on it, that thread execs `busy-ms MS`
//!                                (neither thread runs until then)
//! `gt-load sleepers N SECS`      N forked processes blocked in a sleep for SECS
//! `gt-load idle-threads N SECS`  one process with N threads blocked in a sleep for SECS
//! `gt-load policy fifo|deadline MODE ARGS…`
//!                                MODE run as a SCHED_FIFO or SCHED_DEADLINE task
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use greentop_tests::{idle, policy, wakers};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    dispatch(&args);
}

fn dispatch(args: &[String]) {
    let num = |i: usize| -> f64 {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| usage())
    };
    match args.first().map(String::as_str) {
        Some("busy") => spin_wall(Duration::from_secs_f64(num(1))),
        Some("busy-ms") => spin_cpu(Duration::from_secs_f64(num(1) / 1e3)),
        Some("threads") => threads(num(1) as usize, Duration::from_secs_f64(num(2))),
        Some("burst") => burst(num(1) as usize, num(2)),
        Some("pingpong") => pingpong(Duration::from_secs_f64(num(1))),
        Some("thread-exec") => thread_exec(num(1)),
        Some("thread-exec-when-told") => thread_exec_when_told(num(1)),
        Some("sleepers") => idle::sleepers(num(1) as usize, Duration::from_secs_f64(num(2))),
        Some("idle-threads") => {
            idle::threads(num(1) as usize, Duration::from_secs_f64(num(2)));
        }
        Some("wakers") => {
            let plan = wakers::Plan {
                processes: num(1) as usize,
                secs: num(2),
                work: Duration::from_secs_f64(num(3) / 1e6),
                hz: num(4),
                gated: args.get(5).is_some_and(|a| a == "--gated"),
            };
            if let Err(err) = wakers::run(plan) {
                eprintln!("gt-load wakers: {err}");
                std::process::exit(1);
            }
        }
        Some("policy") => {
            let policy = args
                .get(1)
                .and_then(|p| policy::Policy::parse(p))
                .unwrap_or_else(|| usage());
            if let Err(err) = policy::apply(policy) {
                eprintln!("gt-load: setting {policy:?} failed: {err}");
                std::process::exit(1);
            }
            dispatch(&args[2..]);
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: gt-load busy SECS | busy-ms MS | threads N SECS | burst N MS | pingpong SECS \
         | thread-exec MS | thread-exec-when-told MS | wakers N SECS US HZ [--gated] \
         | sleepers N SECS | idle-threads N SECS | policy fifo|deadline MODE ARGS..."
    );
    std::process::exit(2)
}

fn spin_wall(wall: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < wall {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

/// Spins until this thread has used `cpu` of CPU time (CLOCK_THREAD_CPUTIME_ID).
fn spin_cpu(cpu: Duration) {
    let start = thread_cpu();
    let mut x = 0u64;
    while thread_cpu() - start < cpu {
        for i in 0..1_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn threads(n: usize, cpu: Duration) {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || spin_cpu(cpu))
                .expect("spawn thread")
        })
        .collect();
    for h in handles {
        h.join().expect("join thread");
    }
}

fn burst(n: usize, ms: f64) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut pids = Vec::with_capacity(n);
    for _ in 0..n {
        let mut child = std::process::Command::new(&exe)
            .args(["busy-ms", &ms.to_string()])
            .spawn()
            .expect("spawn child");
        pids.push(child.id().to_string());
        assert!(child.wait().expect("wait child").success());
    }
    // SAFETY: an all-zero rusage is valid, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    println!(
        "children_cpu_ns {}",
        ns(usage.ru_utime) + ns(usage.ru_stime)
    );
    println!("pids {}", pids.join(" "));
}

fn thread_exec(ms: f64) {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("current_exe");
    let spinner = std::thread::spawn(move || {
        spin_cpu(Duration::from_secs_f64(ms / 1e3));
        let err = std::process::Command::new(exe)
            .args(["busy-ms", &ms.to_string()])
            .exec();
        panic!("exec from a thread failed: {err}");
    });
    let _ = spinner.join();
}

fn thread_exec_when_told(ms: f64) {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("current_exe");
    let (told_tx, told_rx) = std::sync::mpsc::channel::<()>();
    let waiter = std::thread::spawn(move || {
        let _ = told_tx.send(());
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let err = std::process::Command::new(exe)
            .args(["busy-ms", &ms.to_string()])
            .exec();
        panic!("exec from a thread failed: {err}");
    });
    told_rx.recv().expect("the waiter started");
    println!("ready");
    std::io::stdout().flush().expect("flush");
    let _ = waiter.join();
}

fn pingpong(wall: Duration) {
    let (mut a_rx, mut b_tx) = std::io::pipe().expect("pipe");
    let (mut b_rx, mut a_tx) = std::io::pipe().expect("pipe");
    let start = Instant::now();
    let echo = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while a_rx.read_exact(&mut byte).is_ok() && byte[0] != 0 {
            if a_tx.write_all(&byte).is_err() {
                break;
            }
        }
    });
    let mut byte = [1u8; 1];
    let mut rounds = 0u64;
    while start.elapsed() < wall {
        b_tx.write_all(&[1]).expect("write");
        b_rx.read_exact(&mut byte).expect("read");
        rounds += 1;
    }
    b_tx.write_all(&[0]).expect("write");
    echo.join().expect("join");
    println!("rounds {rounds}");
}
