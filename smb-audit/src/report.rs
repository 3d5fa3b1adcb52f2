//! Terminal table and CSV rows for scan results.

use smb_core::header::Dialect;

use crate::scan::{DialectResult, HostReport};

pub const TABLE_HEADER: &str =
    "TARGET                  VERDICT     2.0.2 2.1   3.0   3.0.2 3.1.1 SMB1 GUEST ENFORCED  ALGORITHMS";

fn dialect_cell(r: Option<&DialectResult>) -> &'static str {
    match r {
        Some(d) if d.accepted => match (d.signing_required, d.signing_enabled) {
            (Some(true), _) => "req",
            (_, Some(true)) => "ena",
            _ => "off",
        },
        Some(_) => "-",
        None => "?",
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "n/a",
    }
}

/// One table line: per dialect `req` (signing required), `ena` (enabled, not required),
/// `off`, or `-` (refused); then the reasons on the same line.
pub fn table_row(r: &HostReport) -> String {
    let mut s = format!("{:<23} {:<11}", r.target, r.verdict.as_str());
    for d in Dialect::ALL {
        s.push_str(&format!(
            " {:<5}",
            dialect_cell(r.dialects.get(&d.dotted()))
        ));
    }
    let guest = match (r.guest, r.anonymous) {
        (Some(true), _) => "yes",
        (_, Some(true)) => "anon",
        (g, _) => yes_no(g),
    };
    let algs = r
        .signing_algorithms
        .as_ref()
        .map(|a| a.accepted.join(","))
        .unwrap_or_else(|| "-".into());
    s.push_str(&format!(
        " {:<4} {:<5} {:<9} {}",
        yes_no(r.smb1),
        guest,
        yes_no(r.enforced),
        algs
    ));
    for why in r.reasons.iter().chain(&r.errors) {
        s.push_str("\n    ");
        s.push_str(why);
    }
    s
}

pub const CSV_HEADER: &str = "target,address,reachable,smb1,dialect_2.0.2,dialect_2.1,\
dialect_3.0,dialect_3.0.2,dialect_3.1.1,signing_algorithms,preferred_algorithm,\
signing_required,guest,anonymous,enforced,verdict,reasons,errors";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn opt(v: Option<bool>) -> String {
    v.map(|b| b.to_string()).unwrap_or_default()
}

/// The JSON object flattened: a dialect is `required`, `enabled`, `disabled` or `refused`.
pub fn csv_row(r: &HostReport) -> String {
    let mut cells = vec![
        csv_field(&r.target),
        csv_field(r.address.as_deref().unwrap_or("")),
        r.reachable.to_string(),
        opt(r.smb1),
    ];
    for d in Dialect::ALL {
        cells.push(
            match r.dialects.get(&d.dotted()) {
                Some(x) if x.accepted => match (x.signing_required, x.signing_enabled) {
                    (Some(true), _) => "required",
                    (_, Some(true)) => "enabled",
                    _ => "disabled",
                },
                Some(_) => "refused",
                None => "",
            }
            .to_string(),
        );
    }
    let (algs, pref) = match &r.signing_algorithms {
        Some(a) => (
            a.accepted.join(" "),
            a.preferred.clone().unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    };
    cells.extend([
        csv_field(&algs),
        csv_field(&pref),
        r.signing_required.to_string(),
        opt(r.guest),
        opt(r.anonymous),
        opt(r.enforced),
        r.verdict.as_str().to_string(),
        csv_field(&r.reasons.join("; ")),
        csv_field(&r.errors.join("; ")),
    ]);
    cells.join(",")
}
