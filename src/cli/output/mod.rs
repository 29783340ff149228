//! Output: aligned tables, relative times, colour (only on a terminal, never with
//! `NO_COLOR`), JSON for scripts, and the generated completions and manual page.
//!
//! Human output never carries what an app sent raw: [`line`] and every table cell pass
//! through [`printable`], so a title cannot retitle the window or clear the screen.
//! JSON output is written exactly ([`json`], [`json_line`]).
//!
//! Everything is written with `?` on I/O errors; `main` treats a broken pipe
//! (`tidings history | head`) as a normal end, not an error.

pub mod notes;

use std::io::{IsTerminal, Write};

use clap::CommandFactory;

use crate::protocol::Timestamp;
use crate::protocol::display::printable;

use super::{Cli, Failure};

/// Whether standard output gets colour: a terminal, and `NO_COLOR` unset or empty.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in bold when `on`.
pub fn bold(text: &str, on: bool) -> String {
    paint(text, anstyle::Style::new().bold(), on)
}

/// `text` dimmed when `on`.
pub fn dim(text: &str, on: bool) -> String {
    paint(text, anstyle::Style::new().dimmed(), on)
}

fn paint(text: &str, style: anstyle::Style, on: bool) -> String {
    if on {
        format!("{style}{text}{style:#}")
    } else {
        text.to_owned()
    }
}

/// Prints `value` as pretty JSON.
pub fn json(value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// Prints `value` as compact JSON on one line (a stream of events).
pub fn json_line(value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)
}

/// Prints one line of text for a person, control characters neutralised.
pub fn line(text: &str) -> std::io::Result<()> {
    styled_line(&printable(text))
}

/// Prints a line made only of [`layout`]'s cleaned cells and our own styling.
pub fn styled_line(text: &str) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{text}")
}

/// A table cell: printable, on one line.
fn cell(text: &str) -> String {
    printable(text).replace(['\t', '\n'], " ")
}

/// A failure as one line for a person: each cause once (a cause whose text is already
/// said is left out), and with `verbose` the agent's JSON-RPC error code.
pub fn describe_failure(error: &anyhow::Error, verbose: bool) -> String {
    let text = crate::agent::endpoint::describe(error.as_ref());
    let rpc = error.chain().find_map(|e| {
        e.downcast_ref::<crate::ipc::RpcError>().or_else(|| {
            match e.downcast_ref::<crate::ipc::ClientError>() {
                Some(crate::ipc::ClientError::Rpc(rpc)) => Some(rpc),
                _ => None,
            }
        })
    });
    match rpc {
        Some(rpc) if verbose => format!("{text} (JSON-RPC error {})", rpc.code),
        _ => text,
    }
}

/// `tidings completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "tidings", &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(())
}

/// `tidings manpage [--dir DIR]`: the main page to standard output, or every page (the
/// main page names one per subcommand) into `dir`.
pub fn manpage(dir: Option<&std::path::Path>) -> Result<(), Failure> {
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(Cli::command()).render(&mut out)?;
        std::io::stdout().lock().write_all(&out)?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| anyhow::anyhow!("writing the manual pages into {}: {e}", dir.display()))?;
    line(&format!(
        "wrote tidings.1 and a page for each subcommand to {} (man tidings)",
        dir.display()
    ))?;
    Ok(())
}

/// Prints rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    for line in layout(header, rows) {
        styled_line(&line)?;
    }
    Ok(())
}

/// The lines of a table: the header, then one line per row; every cell made printable
/// and kept to one line.
pub fn layout(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| cell(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths.get(i).copied().unwrap_or(0) - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

/// "just now", "5m ago", "3h ago", "2d ago"; "never" for none.
pub fn relative(at: Option<Timestamp>, now: Timestamp) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let secs = now.since(at).as_secs();
    match secs {
        0..=9 => "just now".to_owned(),
        10..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_cannot_carry_terminal_sequences_or_break_lines() {
        let rows = vec![vec![
            "\u{1b}]0;PWNED\u{7}\u{1b}[2J".to_owned(),
            "a\nb\tc".to_owned(),
        ]];
        let lines = layout(&["T", "U"], &rows);
        assert_eq!(lines, ["T               U", "␛]0;PWNED␇␛[2J  a b c"]);
    }

    #[test]
    fn a_failure_says_each_cause_once_and_its_code_only_when_asked() {
        let rpc = crate::ipc::RpcError::new(-32004, "no notification nope here");
        let error = anyhow::Error::from(crate::ipc::ClientError::from(rpc));
        assert_eq!(describe_failure(&error, false), "no notification nope here");
        assert_eq!(
            describe_failure(&error, true),
            "no notification nope here (JSON-RPC error -32004)"
        );
        let wrapped = anyhow::anyhow!("disk").context("saving the credential");
        assert_eq!(
            describe_failure(&wrapped, false),
            "saving the credential: disk"
        );
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = Timestamp::from_millis(10_000_000);
        assert_eq!(relative(None, now), "never");
        assert_eq!(relative(Some(now), now), "just now");
        assert_eq!(
            relative(Some(Timestamp::from_millis(10_000_000 - 125_000)), now),
            "2m ago"
        );
    }
}
