//! The C stand-in for libcuda (`agent/tests/fakes/fake_cuda.c`) and the program that
//! calls it from two threads (`cuda_calls.c`), built with `cc` into a temporary
//! directory; NVIDIA device nodes made with mknod. A missing `cc` fails the test.
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

use tempfile::TempDir;

use crate::KillOnDrop;

/// The major of `/dev/nvidiactl` and `/dev/nvidia[0-9]*`, fixed by the driver.
pub const NVIDIA_MAJOR: u32 = 195;
/// `/dev/nvidiactl`'s minor.
pub const NVIDIACTL_MINOR: u32 = 255;

/// `agent/tests/fakes/`.
pub fn fakes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fakes")
}

/// A built stand-in library (as `DIR/libcuda.so.1`) and the calling program.
pub struct FakeCuda {
    pub dir: TempDir,
    pub lib: PathBuf,
    pub program: PathBuf,
}

impl FakeCuda {
    /// Builds both; `defines` go to the library (`OMIT_LAUNCH_EX`, `OMIT_GRAPHS`).
    pub fn build(defines: &[&str]) -> FakeCuda {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("libcuda.so.1");
        let mut cc = Command::new("cc");
        cc.args(["-shared", "-fPIC", "-O0", "-fno-ipa-icf", "-Wall"])
            .arg("-Wl,-soname,libcuda.so.1")
            .args(defines.iter().map(|d| format!("-D{d}")))
            .arg("-o")
            .arg(&lib)
            .arg(fakes_dir().join("fake_cuda.c"));
        compile(cc);
        let program = dir.path().join("cuda_calls");
        let mut cc = Command::new("cc");
        cc.args(["-O0", "-pthread", "-Wall", "-o"])
            .arg(&program)
            .arg(fakes_dir().join("cuda_calls.c"))
            .arg("-ldl");
        compile(cc);
        FakeCuda { dir, lib, program }
    }

    /// `cuda_calls`' arguments after the program name.
    pub fn args(&self, lib: &Path, counts: (u64, u64), late: bool) -> Vec<String> {
        vec![
            lib.display().to_string(),
            counts.0.to_string(),
            counts.1.to_string(),
            if late { "late" } else { "early" }.to_string(),
        ]
    }

    /// A character device node with this major and minor in the fake's directory.
    pub fn device_node(&self, name: &str, major: u32, minor: u32) -> PathBuf {
        device_node(self.dir.path(), name, libc::S_IFCHR, major, minor)
    }
}

fn compile(mut cc: Command) {
    let output = cc
        .output()
        .expect("running cc (a C compiler is required for the GPU probe tests)");
    assert!(
        output.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes a device node (`kind`: `S_IFCHR` or `S_IFBLK`) at `dir/name`. No driver is
/// needed: such a node can still be opened with O_PATH.
pub fn device_node(dir: &Path, name: &str, kind: libc::mode_t, major: u32, minor: u32) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let path = dir.join(name);
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in path");
    // SAFETY: a valid C string; mknod only reads it.
    let rc = unsafe { libc::mknod(c_path.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
    assert_eq!(
        rc,
        0,
        "mknod {} ({major}:{minor}): {} (needs root)",
        path.display(),
        std::io::Error::last_os_error()
    );
    path
}

/// What one worker thread of `cuda_calls` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerReport {
    pub tid: u32,
    pub calls_each: u64,
    pub sync_calls: u64,
    /// Σ over its sync calls of the time measured around each call.
    pub bracket_ns: u64,
}

/// Entry points the program found, by kind: (ctx, launch, sync).
pub type Found = (u64, u64, u64);

/// A running `cuda_calls`, stepped line by line.
pub struct CudaCalls {
    child: KillOnDrop,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub pid: u32,
    counts: (u64, u64),
}

impl CudaCalls {
    /// Starts it and waits for "ready". `late`: the library is opened only at `init`.
    pub fn spawn(
        fake: &FakeCuda,
        lib: &Path,
        counts: (u64, u64),
        late: bool,
        env: &[(&str, &str)],
    ) -> CudaCalls {
        let mut cmd = Command::new(&fake.program);
        cmd.args(fake.args(lib, counts, late))
            .envs(env.iter().copied());
        CudaCalls::start(cmd, counts)
    }

    /// Starts `cmd`, which must end up running `cuda_calls` with `counts` (through a
    /// wrapper such as `unshare`), and waits for "ready".
    pub fn start(mut cmd: Command, counts: (u64, u64)) -> CudaCalls {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cuda_calls");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut calls = CudaCalls {
            child: KillOnDrop(child),
            stdin,
            stdout,
            pid: 0,
            counts,
        };
        let ready = calls.expect("ready ");
        calls.pid = ready.parse().expect("ready PID");
        calls
    }

    /// The next line, which must start with `prefix`; returns the rest.
    fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read cuda_calls");
        let line = line.trim_end();
        match line.strip_prefix(prefix) {
            Some(rest) => rest.to_string(),
            None => panic!("cuda_calls said {line:?}, expected {prefix:?}…"),
        }
    }

    fn go(&mut self) {
        writeln!(self.stdin, "go").expect("write cuda_calls");
    }

    /// Opens the library if late, and calls cuInit.
    pub fn init(&mut self) {
        self.go();
        self.expect("init");
    }

    /// Runs both threads to the end and reaps the process.
    pub fn run(mut self) -> (Found, [WorkerReport; 2]) {
        self.go();
        let found: Vec<u64> = self
            .expect("found ")
            .split(' ')
            .map(|n| n.parse().expect("count"))
            .collect();
        let mut workers = [(); 2].map(|()| WorkerReport {
            tid: 0,
            calls_each: 0,
            sync_calls: 0,
            bracket_ns: 0,
        });
        for (i, worker) in workers.iter_mut().enumerate() {
            let fields: Vec<u64> = self
                .expect(&format!("thread {} ", i + 1))
                .split(' ')
                .map(|n| n.parse().expect("number"))
                .collect();
            *worker = WorkerReport {
                tid: fields[0] as u32,
                calls_each: if i == 0 { self.counts.0 } else { self.counts.1 },
                sync_calls: fields[1],
                bracket_ns: fields[2],
            };
        }
        self.expect("done");
        let status = self.child.0.wait().expect("reap cuda_calls");
        assert!(status.success(), "cuda_calls failed: {status}");
        ((found[0], found[1], found[2]), workers)
    }
}
