//! The machine and the grid region as CodeCarbon's CSV describes them: OS, CPU
//! model and count, memory, country and cloud region.
use std::path::Path;

use agent::carbon::resolve_region;

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

/// Where the grid region is, in CodeCarbon's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Place {
    pub country_name: String,
    /// ISO 3166 alpha-3.
    pub country_iso_code: String,
    /// A state or province, lower case as CodeCarbon writes it.
    pub region: String,
    pub cloud_provider: String,
    pub cloud_region: String,
    pub on_cloud: bool,
}

impl Place {
    /// From a canonical table code (`FRA`, `US-CA`, `aws:us-east-1`, `world`).
    pub fn of_region(code: &str) -> Place {
        if let Some((provider, region)) = code.split_once(':') {
            // AWS and Azure regions carry the grid zone they draw from.
            let zone = resolve_region(code).ok().and_then(|e| e.zone);
            let inner = zone.map(Place::of_region).unwrap_or_default();
            return Place {
                cloud_provider: provider.to_string(),
                cloud_region: region.to_string(),
                on_cloud: true,
                ..inner
            };
        }
        let entry = match resolve_region(code) {
            Ok(entry) if entry.code != agent::carbon::table::WORLD_CODE => entry,
            _ => return Place::default(),
        };
        if is_alpha3(entry.code) {
            return Place {
                country_name: entry.name.to_string(),
                country_iso_code: entry.code.to_string(),
                ..Place::default()
            };
        }
        // A part of a country: `US-CA`, `CA-QC`, `RU-MOSCOW`.
        let country = entry
            .code
            .split_once('-')
            .and_then(|(prefix, _)| resolve_region(prefix).ok())
            .filter(|c| is_alpha3(c.code));
        Place {
            country_name: country.map(|c| c.name.to_string()).unwrap_or_default(),
            country_iso_code: country.map(|c| c.code.to_string()).unwrap_or_default(),
            region: entry.name.to_lowercase(),
            ..Place::default()
        }
    }
}

fn is_alpha3(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_to_places() {
        // (code, country, iso, region, provider, cloud region)
        let cases = [
            ("FRA", "France", "FRA", "", "", ""),
            ("US-CA", "United States", "USA", "california", "", ""),
            (
                "aws:us-east-1",
                "United States",
                "USA",
                "virginia",
                "aws",
                "us-east-1",
            ),
            ("gcp:europe-west1", "", "", "", "gcp", "europe-west1"),
            ("world", "", "", "", "", ""),
        ];
        for (code, name, iso, region, provider, cloud) in cases {
            let p = Place::of_region(code);
            assert_eq!(
                (
                    p.country_name.as_str(),
                    p.country_iso_code.as_str(),
                    p.region.as_str(),
                    p.cloud_provider.as_str(),
                    p.cloud_region.as_str()
                ),
                (name, iso, region, provider, cloud),
                "{code}"
            );
            assert_eq!(p.on_cloud, !provider.is_empty(), "{code}");
        }
    }

    #[test]
    fn this_host_is_described() {
        let host = Host::read(Path::new("/proc"));
        assert!(host.os.starts_with("Linux-"), "{host:?}");
        assert!(host.cpu_count >= 1 && host.ram_total_gb > 0.0, "{host:?}");
    }
}
