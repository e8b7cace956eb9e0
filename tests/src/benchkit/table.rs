//! Blocks of benchmark results (a table with its notes, and the load average before
//! it was measured), their Markdown, and the generated section of
//! docs/benchmarks.md that `cargo xtask bench` rewrites.
use serde::{Deserialize, Serialize};

use super::Machine;

/// Start and end markers of the generated section.
pub const BEGIN: &str = "<!-- cargo xtask bench: generated section begins -->";
pub const END: &str = "<!-- cargo xtask bench: generated section ends -->";

/// One block of the results: a titled table, measured after `load_before`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub title: String,
    /// The command that measures this block alone.
    pub command: String,
    /// 1, 5, 15-minute load averages when the block started.
    pub load_before: [f64; 3],
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines under the table: what each figure is, causes of missed targets.
    pub notes: Vec<String>,
}

impl Block {
    pub fn new(title: &str, command: &str, header: &[&str]) -> Block {
        Block {
            title: title.to_owned(),
            command: command.to_owned(),
            load_before: super::load_average(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            ..Block::default()
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// `### title`, the load, the table and its notes.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.title);
        out.push_str(&format!(
            "`{}` — load average before: {}\n\n",
            self.command,
            format_load(self.load_before)
        ));
        out.push_str(&markdown_table(&self.header, &self.rows));
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                out.push_str(&format!("* {note}\n"));
            }
        }
        out
    }
}

/// `0.52 / 1.40 / 3.05` (1, 5, 15 min); `unknown` when unreadable.
pub fn format_load(load: [f64; 3]) -> String {
    if load.iter().any(|l| l.is_nan()) {
        return "unknown".to_owned();
    }
    format!(
        "{:.2} / {:.2} / {:.2} (1/5/15 min)",
        load[0], load[1], load[2]
    )
}

/// A GitHub Markdown table; `|` in cells escaped, short rows padded.
pub fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let escape = |cell: &str| cell.replace('|', "\\|");
    let line = |cells: &mut dyn Iterator<Item = String>| {
        let cells: Vec<String> = cells.collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&mut header.iter().map(|h| escape(h)));
    out.push_str(&line(&mut header.iter().map(|_| "---".to_owned())));
    for row in rows {
        let mut cells = (0..header.len()).map(|i| escape(row.get(i).map_or("", String::as_str)));
        out.push_str(&line(&mut cells));
    }
    out
}

/// The whole generated section: machine, date, command, then every block.
pub fn section(machine: &Machine, date: &str, agent: &str, blocks: &[Block]) -> String {
    let mut out = format!("{BEGIN}\n\n");
    out.push_str(&format!(
        "Measured {date} by `cargo xtask bench` on {}; greentop-agent {agent}. \
         Medians of the rounds each block names; every ratio is taken within one round.\n\n",
        machine.describe()
    ));
    for block in blocks {
        out.push_str(&block.to_markdown());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// `doc` with its generated section replaced by `section`; without one, the section
/// goes after the first paragraph that follows the title.
pub fn replace_section(doc: &str, section: &str) -> String {
    if let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END))
        && begin < end
    {
        let after = &doc[end + END.len()..];
        let after = after.strip_prefix('\n').unwrap_or(after);
        return format!("{}{section}{after}", &doc[..begin]);
    }
    let insert_at = doc.find("\n## ").map_or(doc.len(), |at| at + 1);
    format!(
        "{}## Side by side — `cargo xtask bench`\n\n{section}\n{}",
        &doc[..insert_at],
        &doc[insert_at..]
    )
}

/// A number with `digits` decimals, or `—` for NaN.
pub fn num(value: f64, digits: usize) -> String {
    if value.is_nan() {
        "—".to_owned()
    } else {
        format!("{value:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Block {
        Block {
            title: "Agent overhead".into(),
            command: "cargo xtask bench versus overhead".into(),
            load_before: [0.5, 1.25, 2.0],
            header: vec!["tool".into(), "% of a core".into()],
            rows: vec![
                vec!["greentop | kernel".into(), "0.31".into()],
                vec!["scaphandre".into()],
            ],
            notes: vec!["median of 5".into()],
        }
    }

    #[test]
    fn a_block_in_markdown() {
        assert_eq!(
            block().to_markdown(),
            "### Agent overhead\n\n\
             `cargo xtask bench versus overhead` — load average before: 0.50 / 1.25 / 2.00 (1/5/15 min)\n\n\
             | tool | % of a core |\n\
             | --- | --- |\n\
             | greentop \\| kernel | 0.31 |\n\
             | scaphandre |  |\n\
             \n* median of 5\n"
        );
        let mut unknown = block();
        unknown.load_before = [f64::NAN; 3];
        assert!(
            unknown
                .to_markdown()
                .contains("load average before: unknown")
        );
    }

    #[test]
    fn numbers_and_missing_numbers() {
        assert_eq!(num(0.30449, 2), "0.30");
        assert_eq!(num(f64::NAN, 2), "—");
        assert_eq!(num(12.0, 0), "12");
    }

    #[test]
    fn the_section_is_replaced_in_place_or_inserted_before_the_first_heading() {
        let machine = Machine {
            cpu_model: "AMD EPYC".into(),
            vcpus: 2,
            kernel: "6.18".into(),
            memory_gib: 23.4,
            virtualized: true,
        };
        let first = section(&machine, "2026-12-01", "main abc", &[block()]);
        assert!(first.starts_with(BEGIN) && first.ends_with(&format!("{END}\n")));
        assert!(first.contains("AMD EPYC, 2 vCPUs (virtual machine)"));
        let doc = "# Benchmarks\n\nIntro.\n\n## eBPF\n\ntext\n";
        let once = replace_section(doc, &first);
        assert!(once.starts_with("# Benchmarks\n\nIntro.\n\n## Side by side"));
        assert!(once.ends_with(&format!("{END}\n\n## eBPF\n\ntext\n")));
        let second = section(&machine, "2026-12-02", "main abc", &[]);
        let twice = replace_section(&once, &second);
        assert!(twice.contains("2026-12-02") && !twice.contains("2026-12-01"));
        assert_eq!(twice.matches(BEGIN).count(), 1);
        assert!(twice.ends_with("## eBPF\n\ntext\n"));
    }
}
