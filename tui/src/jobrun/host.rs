//! The machine and the grid region as CodeCarbon's CSV describes them: OS, CPU
//! model and count, memory, country and cloud region.
use std::path::Path;

/// This machine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Host {
    /// `Linux-6.18.0-x86_64`, like Python's `platform.platform()`.
    pub os: String,
    pub cpu_count: usize,
    pub cpu_model: String,
    pub ram_total_gb: f64,
}

impl Host {
    /// Reads `<procfs>/cpuinfo`, `<procfs>/meminfo` and uname; missing parts stay empty.
    pub fn read(procfs_root: &Path) -> Host {
        let cpuinfo = std::fs::read_to_string(procfs_root.join("cpuinfo")).unwrap_or_default();
        let meminfo = std::fs::read_to_string(procfs_root.join("meminfo")).unwrap_or_default();
        let field = |text: &str, key: &str| -> Option<String> {
            text.lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let mem_kb: f64 = field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0.0);
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        Host {
            os: os_name(),
            cpu_count: usize::try_from(online).unwrap_or(0),
            cpu_model: field(&cpuinfo, "model name").unwrap_or_default(),
            ram_total_gb: mem_kb / (1024.0 * 1024.0),
        }
    }
}

fn os_name() -> String {
    // SAFETY: all-zero is a valid utsname to fill in.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is valid and writable.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "Linux".to_string();
    }
    let text = |field: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{}-{}-{}",
        text(&uts.sysname),
        text(&uts.release),
        text(&uts.machine)
    )
}
