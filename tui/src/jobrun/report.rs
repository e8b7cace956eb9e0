//! The report of a `greentop run`: every run of every command, their medians and
//! spreads, the comparison and the carbon-aware start, written as JSON
//! (`--json FILE`) and as CodeCarbon CSV rows (`--emissions-csv FILE`).
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use agent::cli::UsageError;
use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::child::User;
use super::emissions_csv::{self, RowContext};
use super::green::GreenDecision;
use super::host::Host;
use super::record::RunRecord;
use super::stats::{self, Relative, RunsSummary};

/// The whole `--json` document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub greentop_version: String,
    pub label: Option<String>,
    /// `--units`: units of work per run.
    pub units: Option<f64>,
    /// Shared by every run of this invocation (the CSV's experiment_id).
    pub experiment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_green: Option<GreenDecision>,
    pub commands: Vec<CommandRuns>,
    /// With `--compare`: each command after the first against the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparison: Vec<Relative>,
}

/// One command's runs and their summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandRuns {
    pub command: Vec<String>,
    pub runs: Vec<RunRecord>,
    pub summary: RunsSummary,
}

impl Report {
    /// Summarises the runs of each command (and compares them if there are several).
    pub fn build(
        label: Option<String>,
        units: Option<f64>,
        when_green: Option<GreenDecision>,
        commands: &[Vec<String>],
        runs: Vec<Vec<RunRecord>>,
    ) -> Report {
        let comparison = if commands.len() > 1 {
            stats::compare(&runs)
        } else {
            Vec::new()
        };
        let commands = commands
            .iter()
            .zip(runs)
            .map(|(command, runs)| CommandRuns {
                command: command.clone(),
                summary: stats::summarize(&runs, units),
                runs,
            })
            .collect();
        Report {
            greentop_version: env!("CARGO_PKG_VERSION").to_string(),
            label,
            units,
            experiment_id: uuid4(),
            when_green,
            commands,
            comparison,
        }
    }
}

/// A random (version 4) UUID, as CodeCarbon's run and experiment ids are.
pub fn uuid4() -> String {
    let mut bytes = [0u8; 16];
    let filled = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // No urandom: time and pid still make ids distinct between runs.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An output file named on the command line, checked before the job starts so a
/// typo does not cost a run.
pub struct Output {
    pub path: PathBuf,
    /// Created by greentop (and so handed to the invoking user under sudo).
    pub created: bool,
}

impl Output {
    /// Opens `path` for appending (creating it if missing) to prove it writable.
    pub fn check(path: &Path) -> anyhow::Result<Output> {
        let created = !path.exists();
        // The user named the file: a failure is theirs to fix (exit status 2).
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
        Ok(Output {
            path: path.to_path_buf(),
            created,
        })
    }

    /// Removes the file if greentop created it and nothing was written to it (no
    /// run took place).
    pub fn discard_if_unused(&self) {
        let empty = std::fs::metadata(&self.path).is_ok_and(|m| m.len() == 0);
        if self.created && empty {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Under sudo, a file greentop created belongs to the user who asked for it.
    fn hand_over(&self, user: Option<&User>) -> io::Result<()> {
        match user {
            Some(u) if self.created => {
                std::os::unix::fs::chown(&self.path, Some(u.uid), Some(u.gid))
            }
            _ => Ok(()),
        }
    }

    pub fn write_json(&self, report: &Report, user: Option<&User>) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(report)?;
        std::fs::write(&self.path, text + "\n")
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.hand_over(user)
            .with_context(|| format!("giving {} to the invoking user", self.path.display()))
    }

    /// One CodeCarbon row per run.
    pub fn append_csv(
        &self,
        report: &Report,
        project: &str,
        user: Option<&User>,
    ) -> anyhow::Result<()> {
        let host = Host::read(Path::new("/proc"));
        for command in &report.commands {
            let name = match (&report.label, report.commands.len()) {
                (Some(label), 1) => label.clone(),
                (Some(label), _) => format!("{label}: {}", program(&command.command)),
                (None, _) if report.commands.len() == 1 => project.to_string(),
                (None, _) => program(&command.command),
            };
            for run in &command.runs {
                let run_id = uuid4();
                let ctx = RowContext {
                    project_name: &name,
                    run_id: &run_id,
                    experiment_id: &report.experiment_id,
                    host: &host,
                };
                agent::codecarbon::append(&self.path, &emissions_csv::row(run, &ctx))
                    .with_context(|| format!("appending to {}", self.path.display()))?;
            }
        }
        self.hand_over(user)
            .with_context(|| format!("giving {} to the invoking user", self.path.display()))
    }
}

/// The program's file name: `python` for `/usr/bin/python train.py`.
pub fn program(argv: &[String]) -> String {
    let first = argv.first().map_or("", String::as_str);
    Path::new(first)
        .file_name()
        .map_or_else(|| first.to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let (a, b) = (uuid4(), uuid4());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{a}"
        );
    }

    #[test]
    fn programs_are_file_names() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(program(&argv("/usr/bin/python3 train.py")), "python3");
        assert_eq!(program(&argv("make -j8")), "make");
        assert_eq!(program(&[]), "");
    }
}
