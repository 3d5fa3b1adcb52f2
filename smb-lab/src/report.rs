//! The lab report: every scenario's expected and observed outcome, the client/server
//! signing table filled from observed sessions, as a terminal table, Markdown (with Mermaid
//! sequence diagrams) and JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The outcome of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Stable identifier, e.g. `relay/3.1.1/server-requires`.
    pub id: String,
    /// `relay`, `victim-signing`, `flip-read`, `strip-signing-required`, `guest`, `table`.
    pub group: String,
    pub title: String,
    pub expected: String,
    pub observed: String,
    pub passed: bool,
    /// The raw evidence (relay attempt, proxy trace summary, client result).
    pub evidence: serde_json::Value,
}

/// One cell of the client/server signing table, from a real session.
#[derive(Debug, Clone, Serialize)]
pub struct TableCell {
    pub dialect: String,
    pub client_requires: bool,
    pub server_requires: bool,
    /// "signed", "unsigned", "mixed", "no traffic" as seen on the wire (SIGNED flags after
    /// authentication), or "failed: ..." when the session did not come up.
    pub observed: String,
    pub signed_messages: usize,
    pub post_auth_messages: usize,
    /// Left out of the verdict: 3.1.1 TREE_CONNECT and FSCTL_VALIDATE_NEGOTIATE_INFO,
    /// which are signed whatever the policy.
    pub signed_by_rule_messages: usize,
    /// What the rule says: signed when either side requires signing.
    pub expected: String,
    pub passed: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    pub target: String,
    /// Seconds since the Unix epoch.
    pub generated_at: u64,
    pub addresses: Addresses,
    pub all_passed: bool,
    pub passed: usize,
    pub failed: usize,
    pub scenarios: Vec<ScenarioResult>,
    pub signing_table: Vec<TableCell>,
}

/// Who was where.
#[derive(Debug, Clone, Serialize)]
pub struct Addresses {
    pub victim: String,
    pub attacker: String,
    pub target: String,
}

impl LabReport {
    pub fn new(
        target: &str,
        addresses: Addresses,
        scenarios: Vec<ScenarioResult>,
        signing_table: Vec<TableCell>,
    ) -> Self {
        let failed = scenarios.iter().filter(|s| !s.passed).count()
            + signing_table.iter().filter(|c| !c.passed).count();
        let passed = scenarios.len() + signing_table.len() - failed;
        LabReport {
            target: target.to_string(),
            generated_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            addresses,
            all_passed: failed == 0,
            passed,
            failed,
            scenarios,
            signing_table,
        }
    }

    /// The terminal table.
    pub fn render_terminal(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "NTLM relay lab against {} (victim {}, attacker {}, target {})\n",
            self.target, self.addresses.victim, self.addresses.attacker, self.addresses.target
        );
        let rows: Vec<[String; 4]> = self
            .scenarios
            .iter()
            .map(|s| {
                [
                    verdict(s.passed).to_string(),
                    s.title.clone(),
                    s.expected.clone(),
                    s.observed.clone(),
                ]
            })
            .collect();
        out.push_str(&text_table(
            &["", "scenario", "expected", "observed"],
            &rows,
        ));
        out.push('\n');
        if let Some((header, rows)) = self.relay_matrix() {
            out.push_str(
                "Relay outcome per dialect (what the attacker got with the victim's logon)\n",
            );
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            out.push_str(&text_table_dyn(&header, &rows));
            out.push('\n');
        }
        out.push_str(&self.render_signing_table_text());
        let _ = writeln!(
            out,
            "\n{} passed, {} failed: {}",
            self.passed,
            self.failed,
            if self.all_passed {
                "every scenario ended as expected"
            } else {
                "SOME SCENARIOS DID NOT END AS EXPECTED"
            }
        );
        out
    }

    /// The relay scenarios as a matrix: rows = target policy x victim policy, columns =
    /// dialects; a cell says whether the attacker got in ("(!)" when not as expected).
    fn relay_matrix(&self) -> Option<(Vec<String>, Vec<Vec<String>>)> {
        let relays: Vec<&ScenarioResult> = self
            .scenarios
            .iter()
            .filter(|s| s.group == "relay" || s.group == "victim-signing")
            .collect();
        let dialect_of = |s: &ScenarioResult| {
            s.evidence["attempt"]["target_dialect"]
                .as_str()
                .map(str::to_string)
        };
        let mut dialects: Vec<String> = Vec::new();
        for d in relays.iter().filter_map(|s| dialect_of(s)) {
            if !dialects.contains(&d) {
                dialects.push(d);
            }
        }
        if dialects.is_empty() {
            return None;
        }
        let mut header = vec!["target".to_string(), "victim".to_string()];
        header.extend(dialects.iter().map(|d| format!("SMB {d}")));
        let mut rows = Vec::new();
        for target_requires in [false, true] {
            for victim_requires in [false, true] {
                let mut row = vec![role(target_requires), role(victim_requires)];
                let mut any = false;
                for d in &dialects {
                    let cell = relays.iter().find(|s| {
                        dialect_of(s).as_ref() == Some(d)
                            && s.id.contains(if target_requires {
                                "server-requires"
                            } else {
                                "server-enabled"
                            })
                            && s.id.contains(if victim_requires {
                                "victim-requires"
                            } else {
                                "victim-enabled"
                            })
                    });
                    row.push(cell.map_or("-".to_string(), |s| {
                        any = true;
                        let a = &s.evidence["attempt"];
                        let what = if a["marker_written"] == true {
                            "GOT IN".to_string()
                        } else if let Some(st) = a["stopped_at"]["status"].as_str() {
                            format!("blocked ({st})")
                        } else {
                            "failed".to_string()
                        };
                        if s.passed {
                            what
                        } else {
                            format!("{what} (!)")
                        }
                    }));
                }
                if any {
                    rows.push(row);
                }
            }
        }
        Some((header, rows))
    }

    /// Dialects of the table, in the order they were run.
    fn table_dialects(&self) -> Vec<String> {
        let mut ds: Vec<String> = Vec::new();
        for c in &self.signing_table {
            if !ds.contains(&c.dialect) {
                ds.push(c.dialect.clone());
            }
        }
        ds
    }

    fn table_rows(
        &self,
        cell_text: impl Fn(&TableCell) -> String,
    ) -> (Vec<String>, Vec<Vec<String>>) {
        let dialects = self.table_dialects();
        let mut header = vec!["client".to_string(), "server".to_string()];
        header.extend(dialects.iter().map(|d| format!("SMB {d}")));
        let mut rows = Vec::new();
        for client in [true, false] {
            for server in [true, false] {
                let mut row = vec![role(client), role(server)];
                for d in &dialects {
                    let cell = self.signing_table.iter().find(|c| {
                        &c.dialect == d
                            && c.client_requires == client
                            && c.server_requires == server
                    });
                    row.push(cell.map_or("-".to_string(), &cell_text));
                }
                rows.push(row);
            }
        }
        (header, rows)
    }

    fn render_signing_table_text(&self) -> String {
        if self.signing_table.is_empty() {
            return String::new();
        }
        let (header, rows) = self.table_rows(|c| {
            let mark = if c.passed { "" } else { " (!)" };
            format!("{}{mark}", c.observed)
        });
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut out = String::from(
            "Signing table (SMB2+): observed on the wire, SIGNED flags after authentication\n",
        );
        out.push_str(&text_table_dyn(&header, &rows));
        out
    }

    /// `lab-report.md`.
    pub fn render_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# NTLM relay lab report\n");
        let _ = writeln!(
            md,
            "Target: **{}**. Victim client `{}`, attacker (relay / man in the middle) `{}`, target \
             server `{}`, all on loopback in one process.\n",
            self.target, self.addresses.victim, self.addresses.attacker, self.addresses.target
        );
        let _ = writeln!(
            md,
            "**{}**: {} passed, {} failed.\n",
            if self.all_passed {
                "Every scenario ended as expected"
            } else {
                "Some scenarios did not end as expected"
            },
            self.passed,
            self.failed
        );
        let _ = writeln!(md, "## Scenarios\n");
        let _ = writeln!(
            md,
            "| | Scenario | Expected | Observed |\n|---|---|---|---|"
        );
        for s in &self.scenarios {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                verdict(s.passed),
                cell(&s.title),
                cell(&s.expected),
                cell(&s.observed)
            );
        }
        if let Some((header, rows)) = self.relay_matrix() {
            let _ = writeln!(
                md,
                "\n## Relay outcome per dialect\n\nWhat the attacker got with the victim's \
                 logon: GOT IN = share listed and marker written; blocked = the status of its \
                 first refused request. \"required\"/\"enabled\" = RequireSecuritySignature \
                 on/off.\n"
            );
            md_table(&mut md, &header, &rows);
        }
        if !self.signing_table.is_empty() {
            let _ = writeln!(
                md,
                "\n## Client/server signing table (SMB2+)\n\nEach cell is a real session, judged \
                 on the wire: after authentication, did every message carry the SIGNED flag? \
                 The rule from the guidance is \"signed when either side requires it\".\n"
            );
            let (header, rows) = self.table_rows(|c| {
                let mark = if c.passed { "" } else { " ❌" };
                format!(
                    "{} ({}/{}){mark}",
                    c.observed, c.signed_messages, c.post_auth_messages
                )
            });
            md_table(&mut md, &header, &rows);
        }
        // The most recent dialect for each, from scenarios that ended as expected.
        let relays = self
            .scenarios
            .iter()
            .filter(|s| s.group == "relay" && s.passed);
        let got_in = relays
            .clone()
            .rfind(|s| s.evidence["attempt"]["marker_written"] == true);
        let blocked = relays.clone().rfind(|s| {
            s.evidence["attempt"]["target_requires_signing"] == true
                && s.evidence["attempt"]["stopped_at"]["status"] == "ACCESS_DENIED"
        });
        // Each diagram from a run's evidence, or the static one when no run fits.
        for (heading, run, fallback) in [
            (
                "A relay that works (target does not require signing)",
                got_in,
                MERMAID_SUCCESS,
            ),
            (
                "A relay that signing stops (target requires signing)",
                blocked,
                MERMAID_BLOCKED,
            ),
        ] {
            let _ = writeln!(md, "\n## {heading}\n");
            match run.and_then(|s| relay_diagram(&s.evidence["attempt"], &s.title)) {
                Some(d) => md.push_str(&d),
                None => md.push_str(fallback),
            }
        }
        let _ = writeln!(
            md,
            "\nThe relay forwards the victim's NTLM messages unchanged, so the target accepts the \
             authentication. What the relay never has is the session key (it is derived from the \
             victim's password), so it cannot sign. A target that requires signing refuses the \
             first unsigned request (MS-SMB2 3.3.5.2.4) and the stolen session is useless. \
             Requiring signing on the victim's side alone does not help: the victim signs its \
             own session, not the one the attacker opens to the target.\n"
        );
        let _ = writeln!(
            md,
            "## Evidence\n\nThe raw evidence of every scenario is in `lab-report.json`."
        );
        md
    }

    /// Writes `lab-report.md` and `lab-report.json` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let md = dir.join("lab-report.md");
        let json = dir.join("lab-report.json");
        std::fs::write(&md, self.render_markdown())?;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&json, text + "\n")?;
        Ok((md, json))
    }
}

/// A sequence diagram of one relay attempt as it ran (its evidence in lab-report.json):
/// the NTLM legs, what the victim was told, and every post-authentication step with the
/// target's status, marking the step where signing stopped the attacker.
fn relay_diagram(a: &serde_json::Value, title: &str) -> Option<String> {
    let text = |v: &serde_json::Value| v.as_str().map(mermaid_text);
    let dialect = text(&a["target_dialect"])?;
    let mode = a["target_security_mode"].as_u64()?;
    let required = mode & 2 != 0;
    let mut d = String::from("```mermaid\nsequenceDiagram\n");
    let _ = writeln!(d, "    participant V as Victim client");
    let _ = writeln!(d, "    participant A as Relay (attacker)");
    let _ = writeln!(
        d,
        "    participant T as Target, signing {}",
        if required { "required" } else { "not required" }
    );
    let _ = writeln!(d, "    Note over V,T: {}", mermaid_text(title));
    let _ = writeln!(d, "    V->>A: NEGOTIATE");
    let _ = writeln!(d, "    A->>T: NEGOTIATE (the relay's own)");
    let _ = writeln!(d, "    T-->>A: SMB {dialect}, SecurityMode 0x{mode:02x}");
    let _ = writeln!(d, "    A-->>V: NEGOTIATE response");
    let _ = writeln!(d, "    V->>A: SESSION_SETUP (NTLM NEGOTIATE)");
    let _ = writeln!(d, "    A->>T: SESSION_SETUP (same NTLM NEGOTIATE)");
    let _ = writeln!(d, "    T-->>A: MORE_PROCESSING_REQUIRED (NTLM CHALLENGE)");
    let _ = writeln!(d, "    A-->>V: MORE_PROCESSING_REQUIRED (same CHALLENGE)");
    let _ = writeln!(d, "    V->>A: SESSION_SETUP (NTLM AUTHENTICATE)");
    let _ = writeln!(d, "    A->>T: SESSION_SETUP (same AUTHENTICATE)");
    let user = text(&a["relayed_user"]).unwrap_or_else(|| "the victim".into());
    let auth = text(&a["auth_status"])?;
    let signed = if a["auth_response_signed"] == true {
        ", signed"
    } else {
        ""
    };
    let _ = writeln!(d, "    T-->>A: {auth}{signed}: a session as {user}");
    if let Some(told) = text(&a["victim_told"]) {
        let _ = writeln!(d, "    A-->>V: {told}");
    }
    for step in a["steps"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let req = text(&step["request"])?;
        let detail = text(&step["detail"]).unwrap_or_default();
        let status = text(&step["status"])?;
        let label = if detail.is_empty() {
            req.clone()
        } else {
            format!("{req} {detail}")
        };
        let _ = writeln!(d, "    A->>T: {label} (unsigned: no session key)");
        if step["accepted"] != true && required {
            let _ = writeln!(
                d,
                "    Note over T: signing required: unsigned request refused (MS-SMB2 3.3.5.2.4)"
            );
        }
        let _ = writeln!(d, "    T-->>A: {status}");
        if step["accepted"] != true {
            let _ = writeln!(d, "    Note over A: the attacker is stopped here");
            break;
        }
    }
    if a["marker_written"] == true {
        let _ = writeln!(
            d,
            "    Note over A,T: share listed and marker file written as {user}"
        );
    }
    d.push_str("```\n");
    Some(d)
}

/// Text safe inside a Mermaid message: no characters that end or break the line.
fn mermaid_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ';' | '#' | '\n' | '\r' => ' ',
            '\\' => '/',
            c => c,
        })
        .collect()
}

const MERMAID_SUCCESS: &str = "```mermaid
sequenceDiagram
    participant V as Victim client (127.0.0.2)
    participant A as Relay (127.0.0.3)
    participant T as Target server (127.0.0.4), signing not required
    V->>A: NEGOTIATE
    A->>T: NEGOTIATE (relay's own)
    T-->>A: SecurityMode = SIGNING_ENABLED
    A-->>V: NEGOTIATE response
    V->>A: SESSION_SETUP (NTLM NEGOTIATE)
    A->>T: SESSION_SETUP (same NTLM NEGOTIATE)
    T-->>A: MORE_PROCESSING (NTLM CHALLENGE)
    A-->>V: MORE_PROCESSING (same CHALLENGE)
    V->>A: SESSION_SETUP (NTLM AUTHENTICATE)
    A->>T: SESSION_SETUP (same AUTHENTICATE)
    T-->>A: SUCCESS: a session as the victim
    A-->>V: LOGON_FAILURE
    A->>T: TREE_CONNECT (unsigned)
    T-->>A: SUCCESS
    A->>T: QUERY_DIRECTORY, CREATE + WRITE marker (unsigned)
    T-->>A: SUCCESS: files listed, marker written
```
";

const MERMAID_BLOCKED: &str = "```mermaid
sequenceDiagram
    participant V as Victim client (127.0.0.2)
    participant A as Relay (127.0.0.3)
    participant T as Target server (127.0.0.4), signing required
    V->>A: NEGOTIATE
    A->>T: NEGOTIATE (relay's own)
    T-->>A: SecurityMode = SIGNING_ENABLED | SIGNING_REQUIRED
    A-->>V: NEGOTIATE response
    V->>A: SESSION_SETUP (NTLM NEGOTIATE)
    A->>T: SESSION_SETUP (same NTLM NEGOTIATE)
    T-->>A: MORE_PROCESSING (NTLM CHALLENGE)
    A-->>V: MORE_PROCESSING (same CHALLENGE)
    V->>A: SESSION_SETUP (NTLM AUTHENTICATE)
    A->>T: SESSION_SETUP (same AUTHENTICATE)
    T-->>A: SUCCESS (signed with a key the relay does not have)
    A-->>V: LOGON_FAILURE
    A->>T: TREE_CONNECT (unsigned: no session key)
    Note over T: Signing required: unsigned request refused (MS-SMB2 3.3.5.2.4)
    T-->>A: ACCESS_DENIED
    Note over A: The attacker is stopped here: no share, no listing, no marker
```
";

fn role(requires: bool) -> String {
    if requires {
        "required".into()
    } else {
        "enabled".into()
    }
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "PASS"
    } else {
        "FAIL"
    }
}

/// A Markdown table (cells already escaped or safe).
fn md_table(md: &mut String, header: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for r in rows {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
}

/// Escapes a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn text_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.to_vec()).collect();
    text_table_dyn(header, &rows)
}

/// A plain-text table; long cells wrap at 46 characters so it fits a terminal.
fn text_table_dyn(header: &[&str], rows: &[Vec<String>]) -> String {
    const WRAP: usize = 46;
    let n = header.len();
    let wrapped: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| wrap(c, WRAP)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &wrapped {
        for (i, c) in r.iter().enumerate().take(n) {
            for line in c {
                widths[i] = widths[i].max(line.chars().count());
            }
        }
    }
    let sep: String = widths
        .iter()
        .map(|w| "-".repeat(w + 2))
        .collect::<Vec<_>>()
        .join("+");
    let mut out = String::new();
    let line = |cells: Vec<&str>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!(" {c:<w$} ", w = widths[i]))
            .collect();
        parts.join("|").trim_end().to_string() + "\n"
    };
    out.push_str(&line(header.to_vec()));
    out.push_str(&sep);
    out.push('\n');
    for r in &wrapped {
        let height = r.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let cells: Vec<&str> = (0..n)
                .map(|i| r.get(i).and_then(|c| c.get(k)).map_or("", String::as_str))
                .collect();
            out.push_str(&line(cells));
        }
    }
    out
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in s.split_whitespace() {
        let last = lines.last_mut().expect("lines is never empty");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(id: &str, passed: bool) -> ScenarioResult {
        ScenarioResult {
            id: id.into(),
            group: "relay".into(),
            title: format!("title of {id}"),
            expected: "blocked at TREE_CONNECT".into(),
            observed: "blocked at TREE_CONNECT (ACCESS_DENIED) | pipe".into(),
            passed,
            evidence: serde_json::json!({}),
        }
    }

    fn addrs() -> Addresses {
        Addresses {
            victim: "127.0.0.2".into(),
            attacker: "127.0.0.3".into(),
            target: "127.0.0.4".into(),
        }
    }

    #[test]
    fn verdict_counts_scenarios_and_cells() {
        let cells = vec![TableCell {
            dialect: "3.1.1".into(),
            client_requires: true,
            server_requires: false,
            observed: "signed".into(),
            signed_messages: 6,
            post_auth_messages: 6,
            signed_by_rule_messages: 0,
            expected: "signed".into(),
            passed: false,
        }];
        let r = LabReport::new(
            "ours",
            addrs(),
            vec![scenario("a", true), scenario("b", true)],
            cells,
        );
        assert!(!r.all_passed);
        assert_eq!((r.passed, r.failed), (2, 1));
        let r = LabReport::new("ours", addrs(), vec![scenario("a", true)], vec![]);
        assert!(r.all_passed);
    }

    #[test]
    fn markdown_has_tables_and_both_diagrams() {
        let r = LabReport::new(
            "ours",
            addrs(),
            vec![scenario("a", true), scenario("b", false)],
            vec![],
        );
        let md = r.render_markdown();
        assert_eq!(md.matches("```mermaid").count(), 2);
        assert!(md.contains("| PASS | title of a |"));
        assert!(md.contains("| FAIL | title of b |"));
        assert!(md.contains("\\| pipe"), "pipes are escaped in cells");
        let text = r.render_terminal();
        assert!(text.contains("SOME SCENARIOS DID NOT END AS EXPECTED"));
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(json["scenarios"][1]["passed"], false);
    }

    #[test]
    fn diagram_marks_the_refused_step() {
        let attempt = serde_json::json!({
            "target_dialect": "3.1.1",
            "target_security_mode": 3,
            "relayed_user": "alice",
            "auth_status": "SUCCESS",
            "auth_response_signed": true,
            "victim_told": "LOGON_FAILURE",
            "steps": [
                { "request": "TREE_CONNECT", "detail": "\\\\h\\data", "status": "ACCESS_DENIED", "accepted": false },
                { "request": "CREATE", "detail": "never sent", "status": "SUCCESS", "accepted": true }
            ],
            "marker_written": false
        });
        let d = relay_diagram(&attempt, "t; x").unwrap();
        let lines: Vec<&str> = d.lines().map(str::trim).collect();
        let refused = lines
            .iter()
            .position(|l| l.starts_with("A->>T: TREE_CONNECT //h/data"))
            .unwrap();
        assert!(lines[refused + 1].contains("MS-SMB2 3.3.5.2.4"));
        assert_eq!(lines[refused + 2], "T-->>A: ACCESS_DENIED");
        assert!(lines[refused + 3].contains("stopped here"));
        assert!(!d.contains("never sent"), "nothing after the refusal");
        assert!(!d.contains(';'), "no Mermaid statement separators in text");
        // Missing evidence: no diagram (the static one is used instead).
        assert!(relay_diagram(&serde_json::json!({}), "t").is_none());
    }

    #[test]
    fn wrapping_keeps_every_word() {
        let s = "a fairly long sentence that must wrap over more than one line of text";
        let lines = wrap(s, 20);
        assert!(lines.len() > 2 && lines.iter().all(|l| l.chars().count() <= 20));
        assert_eq!(lines.join(" "), s);
    }
}
