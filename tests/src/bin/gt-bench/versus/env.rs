//! What the side-by-side benchmark runs the tools with: the fixture powercap tree
//! (one package zone whose `energy_uj` is a FIFO answered at the instant it is read,
//! `agent::energy::testkit::FifoCounter`), the LD_PRELOAD shim Scaphandre needs, and
//! where the peers were installed (or why they are missing).
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use agent::energy::testkit::{FifoCounter, Script};
use anyhow::{Context, bail};

/// The shim's source, compiled with `cc` into the scratch directory.
const SHIM_SOURCE: &str = include_str!("proc_modules_shim.c");
/// The CodeCarbon driver, written into the scratch directory.
const DRIVER_SOURCE: &str = include_str!("codecarbon_driver.py");
/// The one line of /proc/modules the shim serves: Scaphandre looks for these names.
const MODULES_LINE: &str = "intel_rapl_common 36864 1 intel_rapl_msr, Live 0x0000000000000000\n";

/// The fixture's power, W.
pub const FIXTURE_WATTS: f64 = 40.0;
/// max_energy_range_uj of a counter that never wraps during a run.
pub const NO_WRAP_RANGE_UJ: u64 = 262_143_328_850;
/// max_energy_range_uj that makes the 40 W counter wrap every 1.5 s.
pub const WRAP_RANGE_UJ: u64 = 60_000_000;

/// A sysfs tree under `root`: the real `/sys` (a link to each of its entries, and
/// of each `/sys/class` entry: BTF, CPU topology and PMUs stay the machine's) with
/// one fake class, `class/powercap/intel-rapl:0` (package-0), a FIFO counter at
/// FIXTURE_WATTS wrapping at `range_uj`, and the `intel-rapl` control-type directory
/// whose `subsystem` link CodeCarbon looks for.
pub struct Fixture {
    pub root: PathBuf,
    counter: Option<FifoCounter>,
}

impl Fixture {
    pub fn new(root: &Path, range_uj: u64) -> anyhow::Result<Fixture> {
        link_entries(Path::new("/sys"), root, "class")?;
        link_entries(Path::new("/sys/class"), &root.join("class"), "powercap")?;
        let zone = root.join("class/powercap/intel-rapl:0");
        std::fs::create_dir_all(&zone).with_context(|| format!("creating {}", zone.display()))?;
        let control = root.join("class/powercap/intel-rapl");
        std::fs::create_dir_all(&control)?;
        let link = control.join("subsystem");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("..", &link)?;
        }
        std::fs::write(control.join("enabled"), "1\n")?;
        std::fs::write(zone.join("name"), "package-0\n")?;
        std::fs::write(zone.join("enabled"), "1\n")?;
        std::fs::write(zone.join("max_energy_range_uj"), format!("{range_uj}\n"))?;
        let counter = FifoCounter::serve(&zone.join("energy_uj"), wrapping_watts(range_uj));
        Ok(Fixture {
            root: root.to_path_buf(),
            counter: Some(counter),
        })
    }

    /// `<root>/class/powercap`.
    pub fn powercap(&self) -> PathBuf {
        self.root.join("class/powercap")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The FIFO's server must stop before its directory goes.
        self.counter.take();
    }
}

/// Links `to/NAME` → `from/NAME` for each entry of `from` but `except`.
fn link_entries(from: &Path, to: &Path, except: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let name = entry?.file_name();
        if name != except && std::fs::symlink_metadata(to.join(&name)).is_err() {
            std::os::unix::fs::symlink(from.join(&name), to.join(&name))?;
        }
    }
    Ok(())
}

/// `1,000,000 µJ + 40 W × seconds`, modulo `range_uj`.
fn wrapping_watts(range_uj: u64) -> Script {
    Box::new(move |_, seconds| (1_000_000 + (FIXTURE_WATTS * 1e6 * seconds) as u64) % range_uj)
}

/// A peer's executable, or why there is none.
pub type Peer = Result<PathBuf, String>;

/// Everything the tools need.
pub struct Env {
    /// target/release: greentop-agent, gt-load, gt-procpoll.
    pub bin_dir: PathBuf,
    /// The greentop-agent measured.
    pub agent: PathBuf,
    pub scratch: tempfile::TempDir,
    pub scaphandre: Peer,
    /// The venv's python with codecarbon installed.
    pub python: Peer,
    pub driver: PathBuf,
    pub shim: Peer,
    pub modules_file: PathBuf,
    pub ncpu: usize,
    /// The tools `--tools` named.
    pub selected: Vec<super::tools::Tool>,
}

impl Env {
    /// Looks for the peers under `peers` (what `cargo xtask bench` installs there) and
    /// builds the shim.
    pub fn prepare(peers: &Path, selected: Vec<super::tools::Tool>) -> anyhow::Result<Env> {
        let bin_dir = std::env::current_exe()?
            .parent()
            .context("gt-bench's directory")?
            .to_path_buf();
        for needed in ["greentop-agent", "gt-load", "gt-procpoll"] {
            if !bin_dir.join(needed).exists() {
                bail!(
                    "{} is not built (cargo build --release)",
                    bin_dir.join(needed).display()
                );
            }
        }
        let scratch = tempfile::Builder::new()
            .prefix("gt-bench-versus")
            .tempdir()
            .context("scratch directory")?;
        let driver = scratch.path().join("codecarbon_driver.py");
        std::fs::write(&driver, DRIVER_SOURCE)?;
        let modules_file = scratch.path().join("modules");
        std::fs::write(&modules_file, MODULES_LINE)?;
        let shim = build_shim(scratch.path());
        let scaphandre = installed(peers, "bin/scaphandre", "scaphandre");
        let python = installed(peers, "venv/bin/python", "codecarbon")
            .and_then(|python| has_codecarbon(&python).map(|()| python));
        Ok(Env {
            agent: bin_dir.join("greentop-agent"),
            bin_dir,
            scratch,
            scaphandre,
            python,
            driver,
            shim,
            modules_file,
            ncpu: greentop_tests::online_cpus() as usize,
            selected,
        })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// A fresh fixture tree in the scratch directory.
    pub fn fixture(&self, name: &str, range_uj: u64) -> anyhow::Result<Fixture> {
        Fixture::new(&self.scratch.path().join(name), range_uj)
    }
}

/// `peers/file`, or why it is missing: the reason `cargo xtask bench` recorded in
/// `peers/NAME.why` when installing failed.
fn installed(peers: &Path, file: &str, name: &str) -> Peer {
    let path = peers.join(file);
    if path.exists() {
        return Ok(path);
    }
    match std::fs::read_to_string(peers.join(format!("{name}.why"))) {
        Ok(why) => Err(format!("could not be installed: {}", why.trim())),
        Err(_) => Err(format!(
            "not installed: {} is missing (`cargo xtask bench` installs it)",
            path.display()
        )),
    }
}

fn has_codecarbon(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", "import codecarbon; print(codecarbon.__version__)"])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "codecarbon does not import: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}

/// Compiles the /proc/modules shim with `cc`.
fn build_shim(dir: &Path) -> Peer {
    let source = dir.join("proc_modules_shim.c");
    let library = dir.join("proc_modules_shim.so");
    std::fs::write(&source, SHIM_SOURCE).map_err(|e| e.to_string())?;
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .map_err(|e| format!("cc could not start: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc failed to build the /proc/modules shim: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(library)
}

/// Makes `cmd`'s child see `powercap` at /sys/class/powercap (in its own mount
/// namespace: a tmpfs over /sys/class holding only that bind mount), where CodeCarbon
/// looks for RAPL. Needs root.
pub fn with_powercap_at_sys(cmd: &mut Command, powercap: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let source = CString::new(powercap.as_os_str().as_bytes())?;
    let class = CString::new("/sys/class")?;
    let target = CString::new("/sys/class/powercap")?;
    let (root, tmpfs, bind) = (
        CString::new("/")?,
        CString::new("tmpfs")?,
        CString::new("none")?,
    );
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: between fork and exec the closure only makes system calls with
    // pointers to C strings prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            let private = libc::MS_REC | libc::MS_PRIVATE;
            check(libc::mount(
                bind.as_ptr(),
                root.as_ptr(),
                std::ptr::null(),
                private,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                tmpfs.as_ptr(),
                class.as_ptr(),
                tmpfs.as_ptr(),
                0,
                std::ptr::null(),
            ))?;
            check(libc::mkdir(target.as_ptr(), 0o755))?;
            check(libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_says_why() {
        let peers = tempfile::tempdir().unwrap();
        let err = installed(peers.path(), "bin/scaphandre", "scaphandre").unwrap_err();
        assert!(
            err.starts_with("not installed:") && err.contains("bin/scaphandre"),
            "{err}"
        );
        std::fs::write(
            peers.path().join("scaphandre.why"),
            "`cargo install` failed\n",
        )
        .unwrap();
        let err = installed(peers.path(), "bin/scaphandre", "scaphandre").unwrap_err();
        assert_eq!(err, "could not be installed: `cargo install` failed");
        std::fs::create_dir_all(peers.path().join("bin")).unwrap();
        std::fs::write(peers.path().join("bin/scaphandre"), "").unwrap();
        assert!(installed(peers.path(), "bin/scaphandre", "scaphandre").is_ok());
    }
}
