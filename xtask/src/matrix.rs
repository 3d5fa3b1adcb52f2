//! The interop matrix (issue 4): the interop tests append one JSON line per cell to
//! `target/interop-results.jsonl` (tests/src/interop.rs); `cargo xtask test` clears that file
//! before the run and, after it, renders the cells as a Markdown table into
//! `target/interop-matrix.md` and prints it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::Paths;

/// The results file the tests append to (exported to them as `SMB_INTEROP_RESULTS`).
pub fn results_file(paths: &Paths) -> PathBuf {
    paths.target.join("interop-results.jsonl")
}

/// The rendered table.
pub fn matrix_file(paths: &Paths) -> PathBuf {
    paths.target.join("interop-matrix.md")
}

/// Empties the results file before a run, so the matrix shows this run only.
pub fn clear(paths: &Paths) -> Result<PathBuf> {
    let file = results_file(paths);
    match fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", file.display())),
    }
    Ok(file)
}

/// Renders the results into `target/interop-matrix.md` and prints the table.
pub fn report(paths: &Paths) -> Result<()> {
    let file = results_file(paths);
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            println!(
                "xtask: no interop results in {} (did the interop tests run?)",
                file.display()
            );
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let table = render(&text);
    let out = matrix_file(paths);
    fs::write(&out, &table).with_context(|| format!("cannot write {}", out.display()))?;
    println!("\nxtask: == interop matrix ({})\n", out.display());
    print!("{table}");
    Ok(())
}

/// One cell as the tests wrote it.
#[derive(Debug, Clone, Default)]
struct Cell {
    peer: String,
    dialect: String,
    algorithm: String,
    policy: String,
    status: String,
    reason: String,
}

/// The Markdown table of every cell in `jsonl` (one JSON object a line). A cell recorded twice
/// (a retried test) shows its last outcome. Lines that do not parse are listed, not dropped.
fn render(jsonl: &str) -> String {
    let mut cells: BTreeMap<(String, usize, String, String, String), Cell> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let Some(fields) = parse_flat_object(line) else {
            unreadable.push(line.to_string());
            continue;
        };
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let cell = Cell {
            peer: get("peer"),
            dialect: get("dialect"),
            algorithm: get("algorithm"),
            policy: get("policy"),
            status: get("status"),
            reason: get("reason"),
        };
        let key = (
            cell.peer.clone(),
            dialect_rank(&cell.dialect),
            cell.dialect.clone(),
            cell.algorithm.clone(),
            cell.policy.clone(),
        );
        cells.insert(key, cell);
    }

    let count = |status: &str| cells.values().filter(|c| c.status == status).count();
    let (pass, fail, idle) = (count("pass"), count("fail"), count("not configured"));
    let mut out = String::new();
    out.push_str("# Interop matrix\n\n");
    out.push_str(&format!(
        "{} cells: {pass} pass, {fail} fail, {idle} not configured. \
         Written by `cargo xtask test` from target/interop-results.jsonl.\n\n",
        cells.len()
    ));
    // Per peer, in table order.
    let mut peers: Vec<&str> = Vec::new();
    for cell in cells.values() {
        if !peers.contains(&cell.peer.as_str()) {
            peers.push(&cell.peer);
        }
    }
    for peer in peers {
        let of_peer: Vec<&Cell> = cells.values().filter(|c| c.peer == peer).collect();
        let passed = of_peer.iter().filter(|c| c.status == "pass").count();
        let failed = of_peer.iter().filter(|c| c.status == "fail").count();
        let verdict = match (failed, passed) {
            (0, 0) => "not configured".to_string(),
            (0, _) => format!("{passed}/{} pass", of_peer.len()),
            _ => format!("**{failed} FAIL**, {passed}/{} pass", of_peer.len()),
        };
        out.push_str(&format!("- {peer}: {verdict}\n"));
    }
    out.push('\n');
    out.push_str("| Peer | Dialect | Signing | Policy | Result | Reason |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for cell in cells.values() {
        let result = match cell.status.as_str() {
            "pass" => "pass".to_string(),
            "fail" => "**FAIL**".to_string(),
            other => other.to_string(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            md(&cell.peer, 80),
            md(&cell.dialect, 20),
            md(&cell.algorithm, 40),
            md(&cell.policy, 80),
            result,
            md(&cell.reason, 400),
        ));
    }
    if !unreadable.is_empty() {
        out.push_str("\nUnreadable result lines:\n\n");
        for line in unreadable {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

/// Oldest dialect first; anything else after them.
fn dialect_rank(dialect: &str) -> usize {
    ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"]
        .iter()
        .position(|d| *d == dialect)
        .unwrap_or(5)
}

/// A table cell: one line, pipes escaped, at most `max` characters.
fn md(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = one_line.chars().take(max).collect();
    if one_line.chars().count() > max {
        short.push('…');
    }
    short.replace('|', "\\|")
}

/// Parses `{"name":"value",...}` with string values only (what the tests write).
fn parse_flat_object(line: &str) -> Option<BTreeMap<String, String>> {
    serde_json::from_str(line).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_tests_write() {
        let line = r#"{"peer":"smbclient → our server","dialect":"3.1.1","algorithm":"aes-gmac","policy":"a | b","status":"fail","reason":"line1\nline2 \"q\" \\ \u0007","test":"t"}"#;
        let fields = parse_flat_object(line).expect("parses");
        assert_eq!(fields["peer"], "smbclient → our server");
        assert_eq!(fields["reason"], "line1\nline2 \"q\" \\ \u{7}");
        assert!(parse_flat_object(r#"{"a":"b""#).is_none());
        assert!(parse_flat_object(r#"{"a":"b"} x"#).is_none());
        assert!(parse_flat_object(r#"{"a":1}"#).is_none());
    }

    #[test]
    fn renders_one_row_per_cell_last_outcome_wins_dialects_in_order() {
        let jsonl = concat!(
            r#"{"peer":"p","dialect":"3.1.1","algorithm":"a","policy":"x","status":"fail","reason":"first try"}"#,
            "\n",
            r#"{"peer":"p","dialect":"2.0.2","algorithm":"a","policy":"x","status":"pass","reason":"ok"}"#,
            "\n",
            r#"{"peer":"p","dialect":"3.1.1","algorithm":"a","policy":"x","status":"pass","reason":"a|b"}"#,
            "\n",
            "garbage\n",
        );
        let table = render(jsonl);
        assert!(
            table.contains("2 cells: 2 pass, 0 fail, 0 not configured"),
            "{table}"
        );
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| p |")).collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert!(rows[0].contains("| 2.0.2 |"), "{table}");
        assert!(rows[1].contains("a\\|b"), "{table}");
        assert!(table.contains("Unreadable result lines"), "{table}");
    }
}
