//! `gt-bench table --doc FILE [--agent TEXT] [--date YYYY-MM-DD] BLOCKS.json…`: joins
//! the blocks the benchmarks wrote (JSON arrays of `benchkit::table::Block`) into the
//! generated section of docs/benchmarks.md, with the machine's description.
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use greentop_tests::benchkit::Machine;
use greentop_tests::benchkit::table::{Block, replace_section, section};

#[derive(Debug, Parser)]
#[command(name = "gt-bench table")]
struct Options {
    /// The Markdown file whose generated section is rewritten.
    #[arg(long)]
    doc: PathBuf,
    /// Which greentop-agent was measured (a version, a commit).
    #[arg(long, default_value = "")]
    agent: String,
    /// The date of the measurement (default: today, UTC).
    #[arg(long)]
    date: Option<String>,
    /// A group that did not run, as `TITLE=WHY`: a block saying so (repeatable).
    #[arg(long, value_name = "TITLE=WHY")]
    missing: Vec<String>,
    /// Files of blocks, in order.
    files: Vec<PathBuf>,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let opts = Options::try_parse_from(
        std::iter::once("gt-bench table".to_owned()).chain(args.iter().cloned()),
    )?;
    let mut blocks: Vec<Block> = Vec::new();
    for file in &opts.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let more: Vec<Block> =
            serde_json::from_str(&text).with_context(|| format!("blocks in {}", file.display()))?;
        blocks.extend(more);
    }
    for entry in &opts.missing {
        blocks.push(not_run(entry)?);
    }
    let date = opts.date.clone().unwrap_or_else(today);
    let generated = section(&Machine::probe(), &date, &opts.agent, &blocks);
    let doc = std::fs::read_to_string(&opts.doc)
        .with_context(|| format!("reading {}", opts.doc.display()))?;
    std::fs::write(&opts.doc, replace_section(&doc, &generated))
        .with_context(|| format!("writing {}", opts.doc.display()))?;
    print!("{generated}");
    Ok(())
}

/// The block of a group that did not run: its title and why, as one row.
fn not_run(entry: &str) -> anyhow::Result<Block> {
    let (title, why) = entry
        .split_once('=')
        .with_context(|| format!("--missing `{entry}`: expected TITLE=WHY"))?;
    let mut block = Block::new(title, "cargo xtask bench", &["figure", "result"]);
    block.row(vec!["all".into(), format!("not measured: {why}")]);
    Ok(block)
}

/// Today's date, UTC, as YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(secs / 86_400)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_that_did_not_run_is_a_block_saying_why() {
        let block = not_run("Live view=gt-bench-tui exited with exit status: 1").unwrap();
        assert_eq!(block.title, "Live view");
        assert_eq!(
            block.rows,
            [[
                "all",
                "not measured: gt-bench-tui exited with exit status: 1"
            ]]
        );
        let err = not_run("no equals sign").unwrap_err().to_string();
        assert!(err.contains("TITLE=WHY"), "{err}");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_788), "2026-12-01");
    }
}
