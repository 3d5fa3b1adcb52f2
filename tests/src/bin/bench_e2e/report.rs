//! The benchmark's outputs: JSON lines, the BENCHMARKS.md section, the SVG chart.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{Cell, CellResult, Leg, Mode, Pair, GOALS_SECTION};

/// The markers around one section of BENCHMARKS.md (`--section NAME`, default `e2e`).
pub fn markers(section: &str) -> (String, String) {
    (
        format!("<!-- bench-{section}:begin (written by `cargo xtask bench e2e`) -->"),
        format!("<!-- bench-{section}:end -->"),
    )
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Medians of one cell.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub write: f64,
    pub read: f64,
    pub client_cpu: (f64, f64),
    pub server_cpu: (f64, f64),
    pub client_rss_mib: f64,
    pub server_rss_mib: f64,
}

pub fn summarize(r: &CellResult, size_mib: u64) -> Option<Summary> {
    if r.write.is_empty() || r.read.is_empty() {
        return None;
    }
    let gib = size_mib as f64 / 1024.0;
    let m = |legs: &[Leg], f: fn(&Leg) -> f64| median(legs.iter().map(f).collect());
    let rss = |f: fn(&Leg) -> u64| {
        median(
            r.write
                .iter()
                .zip(&r.read)
                .map(|(w, rd)| f(w).max(f(rd)) as f64 / 1024.0)
                .collect(),
        )
    };
    Some(Summary {
        write: m(&r.write, |l| l.mib_s)?,
        read: m(&r.read, |l| l.mib_s)?,
        client_cpu: (
            m(&r.write, |l| l.client_cpu_s)? / gib,
            m(&r.read, |l| l.client_cpu_s)? / gib,
        ),
        server_cpu: (
            m(&r.write, |l| l.server_cpu_s)? / gib,
            m(&r.read, |l| l.server_cpu_s)? / gib,
        ),
        client_rss_mib: rss(|l| l.client_rss_kib)?,
        server_rss_mib: rss(|l| l.server_rss_kib)?,
    })
}

pub fn json_line(cell: Cell, run: usize, size_mib: u64, w: &Leg, r: &Leg) -> String {
    let leg = |l: &Leg| {
        format!(
            "{{\"mib_s\":{:.1},\"wall_s\":{:.3},\"client_cpu_s\":{:.2},\"server_cpu_s\":{:.2},\"client_peak_rss_kib\":{},\"server_peak_rss_kib\":{}}}",
            l.mib_s, l.wall_s, l.client_cpu_s, l.server_cpu_s, l.client_rss_kib, l.server_rss_kib
        )
    };
    format!(
        "{{\"pair\":\"{}\",\"io_mib\":{},\"dialect\":\"{}\",\"signing\":\"{}\",\"run\":{},\"size_mib\":{},\"write\":{},\"read\":{}}}",
        cell.pair.key(),
        cell.io_mib,
        cell.mode.dialect,
        cell.mode.signing.map_or("none", |a| a.short()),
        run + 1,
        size_mib,
        leg(w),
        leg(r)
    )
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// When and where: date, CPU model, core count, smbclient/Samba version.
pub fn machine_line(size_mib: u64, runs: usize, null_sink: bool, warm: bool) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let samba = command_line("smbclient", &["--version"]);
    let sink = if null_sink {
        "reads to /dev/null after one checked round trip per cell"
    } else {
        "reads to a tmpfs file"
    };
    let warm = if warm {
        "free memory warmed before each put"
    } else {
        "free memory not warmed (--no-warm)"
    };
    format!(
        "{date}, {cpu}, {cores} cores; {size_mib} MiB per transfer, median of {runs} runs, \
         {sink}, {warm}; {samba}"
    )
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

fn find(results: &[CellResult], pair: Pair, io: u32, mode: Mode) -> Option<&CellResult> {
    results
        .iter()
        .find(|r| r.cell.pair == pair && r.cell.io_mib == io && r.cell.mode == mode)
}

pub fn markdown(
    results: &[CellResult],
    size_mib: u64,
    machine: &str,
    note: &str,
    section: &str,
    svg: Option<&str>,
) -> String {
    let (begin, end) = markers(section);
    let mut s = String::new();
    let _ = writeln!(s, "{begin}");
    let title = match section {
        "e2e" => "End to end: what signing costs a transfer".to_string(),
        GOALS_SECTION => "End to end: the cells of issue 8's goals, side by side".to_string(),
        _ => format!("End to end ({section})"),
    };
    let _ = writeln!(s, "## {title}\n");
    let _ = writeln!(
        s,
        "`cargo xtask bench e2e`: loopback, every share and the source file on tmpfs, a file \
         written (`put`) then read back (`get`) by one client process each (the measured reads \
         go to /dev/null unless `--sink file` says otherwise: a tmpfs destination made the \
         client's page allocation the largest source of spread); MiB/s as the client reports \
         its own transfer (open to close), CPU seconds per GiB of the client and the server \
         process (smbd: its connection process) from /proc/PID/stat, peak RSS (VmHWM) of each, \
         and the signed/unsigned ratio against the same dialect unsigned. The I/O size is the \
         server's MaxReadSize/MaxWriteSize, which both clients use. Before each put the \
         benchmark touches and frees a quarter more memory than the file, so the share's new \
         pages are not each taken back from the hypervisor during the transfer (on a VM whose \
         host reclaims free memory, a put otherwise cost its server, ours or Samba, up to \
         twice its CPU now and then).\n"
    );
    let _ = writeln!(s, "Measured {machine}.");
    if !note.is_empty() {
        let _ = writeln!(s, "{note}");
    }
    let _ = writeln!(s);
    let mut ios: Vec<u32> = results.iter().map(|r| r.cell.io_mib).collect();
    ios.dedup();
    ios.sort_unstable();
    ios.dedup();
    for &io in &ios {
        let _ = writeln!(s, "### {io} MiB I/O\n");
        let _ = writeln!(
            s,
            "| client → server | dialect, signing | write MiB/s | read MiB/s | signed/unsigned write | signed/unsigned read | client CPU s/GiB write / read | server CPU s/GiB write / read | client peak RSS MiB | server peak RSS MiB |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in results.iter().filter(|r| r.cell.io_mib == io) {
            let c = r.cell;
            let Some(m) = summarize(r, size_mib) else {
                let why = r
                    .error
                    .as_deref()
                    .unwrap_or("no result")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .replace('|', "/");
                let _ = writeln!(
                    s,
                    "| {} | {} | failed: {why} | | | | | | | |",
                    c.pair.label(),
                    c.mode.label()
                );
                continue;
            };
            let (rw, rr) = match (c.mode.signing, find(results, c.pair, io, c.mode.unsigned())) {
                (Some(_), Some(u)) => match summarize(u, size_mib) {
                    Some(u) => (ratio(m.write, u.write), ratio(m.read, u.read)),
                    None => ("–".into(), "–".into()),
                },
                _ => ("".into(), "".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.0} | {rw} | {rr} | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} | {:.0} |",
                c.pair.label(),
                c.mode.label(),
                m.write,
                m.read,
                m.client_cpu.0,
                m.client_cpu.1,
                m.server_cpu.0,
                m.server_cpu.1,
                m.client_rss_mib,
                m.server_rss_mib
            );
        }
        let _ = writeln!(s);
    }
    goals(&mut s, results, size_mib);
    if let Some(svg) = svg {
        let _ = writeln!(s, "![end-to-end throughput]({svg})\n");
    }
    let _ = writeln!(s, "{end}");
    s
}

/// The issue's end-to-end goals, from this run's cells (3.1.1 GMAC, 1 MiB I/O): the ratio of
/// the medians, and the ratio in each round (every cell runs once per round, so the two
/// cells of a goal ran minutes apart in the full benchmark, within a minute with `--goals`)
/// with its median, which shows how far the machine moves the verdict.
fn goals(s: &mut String, results: &[CellResult], size_mib: u64) {
    let [plain, gmac] = Mode::GOALS;
    let [oo, so, ss, os] = Pair::ALL;
    let get = |pair: Pair, mode: Mode| find(results, pair, 1, mode);
    let mut rows = Vec::new();
    let mut row = |goal: &str, target: f64, a: Option<&CellResult>, b: Option<&CellResult>| {
        let (Some(a), Some(b)) = (a, b) else {
            return;
        };
        let (Some(sa), Some(sb)) = (summarize(a, size_mib), summarize(b, size_mib)) else {
            return;
        };
        let legs = [
            ("write", sa.write / sb.write, &a.write, &b.write),
            ("read", sa.read / sb.read, &a.read, &b.read),
        ];
        for (dir, r, x, y) in legs {
            let rounds: Vec<f64> = x.iter().zip(y).map(|(x, y)| x.mib_s / y.mib_s).collect();
            let meeting = rounds.iter().filter(|&&q| q >= target).count();
            let listed: Vec<String> = rounds.iter().map(|q| format!("{q:.2}")).collect();
            let n = rounds.len();
            let middle = median(rounds).unwrap_or(f64::NAN);
            rows.push(format!(
                "| {goal}, {dir} | ≥ {target:.2} | {r:.2} | {} | {middle:.2} | {} ({meeting} of {n}) |",
                if r >= target { "met" } else { "not met" },
                listed.join(" "),
            ));
        }
    };
    row(
        "our client + our server, GMAC signed / unsigned",
        0.95,
        get(oo, gmac),
        get(oo, plain),
    );
    row(
        "smbclient: our server / Samba, GMAC signed",
        1.0,
        get(so, gmac),
        get(ss, gmac),
    );
    row(
        "smbclient: our server / Samba, unsigned",
        1.0,
        get(so, plain),
        get(ss, plain),
    );
    row(
        "our server: our client / smbclient, GMAC signed",
        1.0,
        get(oo, gmac),
        get(so, gmac),
    );
    row(
        "Samba: our client / smbclient, GMAC signed",
        1.0,
        get(os, gmac),
        get(ss, gmac),
    );
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "### Goals of issue 8 (3.1.1, 1 MiB I/O, this run)\n");
    let _ = writeln!(
        s,
        "| goal | target | measured (medians) | | median of the rounds | round by round (rounds meeting it) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---|---:|---|");
    for r in rows {
        let _ = writeln!(s, "{r}");
    }
    let _ = writeln!(s);
}

/// Replaces the text between the markers in `path` (appends the section when absent).
pub fn replace_section(path: &Path, name: &str, section: &str) -> std::io::Result<()> {
    let (begin, end) = markers(name);
    let old = fs::read_to_string(path).unwrap_or_default();
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!(
                "{}{}{}",
                &old[..b],
                section.trim_end(),
                &old[e + end.len()..]
            )
        }
        _ => {
            let sep = if old.is_empty() || old.ends_with("\n\n") {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{sep}{}\n", section.trim_end())
        }
    };
    fs::write(path, new)
}

const COLORS: [&str; 8] = [
    "#9ecae1", "#3182bd", "#a1d99b", "#31a354", "#fdd0a2", "#fd8d3c", "#e6550d", "#a63603",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Grouped bars: one panel per (I/O size, direction), one group per pair, one bar per mode.
pub fn svg(results: &[CellResult], size_mib: u64) -> String {
    let mut ios: Vec<u32> = results.iter().map(|r| r.cell.io_mib).collect();
    ios.sort_unstable();
    ios.dedup();
    let mut pairs: Vec<Pair> = Vec::new();
    let mut modes: Vec<Mode> = Vec::new();
    for r in results {
        if !pairs.contains(&r.cell.pair) {
            pairs.push(r.cell.pair);
        }
        if !modes.contains(&r.cell.mode) {
            modes.push(r.cell.mode);
        }
    }
    let value = |pair: Pair, io: u32, mode: Mode, write: bool| {
        find(results, pair, io, mode)
            .and_then(|r| summarize(r, size_mib))
            .map(|m| if write { m.write } else { m.read })
    };
    let mut top: f64 = 1.0;
    for &io in &ios {
        for &p in &pairs {
            for &m in &modes {
                for w in [true, false] {
                    top = top.max(value(p, io, m, w).unwrap_or(0.0));
                }
            }
        }
    }
    // A round axis maximum.
    let step = if top > 2000.0 {
        500.0
    } else if top > 800.0 {
        200.0
    } else {
        100.0
    };
    let axis = (top / step).ceil() * step;
    let (pw, ph) = (560.0, 300.0);
    let (ml, mt, gap) = (60.0, 70.0, 70.0);
    let width = ml + 2.0 * pw + gap + 20.0;
    let height = mt + ios.len() as f64 * (ph + gap) + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{ml}" y="22" font-size="16" font-weight="bold">SMB transfer on loopback, MiB/s (median; {size_mib} MiB file, tmpfs)</text>"#
    );
    // Legend.
    let mut lx = ml;
    for (i, m) in modes.iter().enumerate() {
        let color = COLORS[Mode::ALL.iter().position(|x| x == m).unwrap_or(i) % COLORS.len()];
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="34" width="12" height="12" fill="{color}"/><text x="{}" y="45">{}</text>"#,
            lx + 16.0,
            esc(&m.label())
        );
        lx += 130.0;
    }
    for (row, &io) in ios.iter().enumerate() {
        for (col, write) in [true, false].into_iter().enumerate() {
            let x0 = ml + col as f64 * (pw + gap);
            let y0 = mt + row as f64 * (ph + gap) + 20.0;
            let _ = writeln!(
                s,
                r#"<text x="{x0}" y="{}" font-weight="bold">{} MiB I/O, {}</text>"#,
                y0 - 6.0,
                io,
                if write { "write (put)" } else { "read (get)" }
            );
            // Axis and grid.
            let ticks = (axis / step) as usize;
            for t in 0..=ticks {
                let v = t as f64 * step;
                let y = y0 + ph - v / axis * ph;
                let _ = writeln!(
                    s,
                    r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{v:.0}</text>"##,
                    x0 + pw,
                    x0 - 4.0,
                    y + 4.0
                );
            }
            let group_w = pw / pairs.len().max(1) as f64;
            let bar_w = (group_w - 16.0) / modes.len().max(1) as f64;
            for (gi, &p) in pairs.iter().enumerate() {
                let gx = x0 + gi as f64 * group_w + 8.0;
                for (mi, &m) in modes.iter().enumerate() {
                    let color =
                        COLORS[Mode::ALL.iter().position(|x| *x == m).unwrap_or(mi) % COLORS.len()];
                    if let Some(v) = value(p, io, m, write) {
                        let h = v / axis * ph;
                        let _ = writeln!(
                            s,
                            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{} {}: {v:.0} MiB/s</title></rect>"#,
                            gx + mi as f64 * bar_w,
                            y0 + ph - h,
                            (bar_w - 1.0).max(1.0),
                            esc(p.label()),
                            esc(&m.label())
                        );
                    }
                }
                // "our client →" over "our server": one line would run into the next group.
                let (from, to) = p.label().split_once(" → ").unwrap_or((p.label(), ""));
                let cx = gx + (group_w - 16.0) / 2.0;
                let _ = writeln!(
                    s,
                    r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{} →<tspan x="{cx:.1}" dy="14">{}</tspan></text>"#,
                    y0 + ph + 16.0,
                    esc(from),
                    esc(to)
                );
            }
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
                y0 + ph,
                x0 + pw,
                y0 + ph
            );
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(pair: Pair, mode: Mode, rates: &[(f64, f64)]) -> CellResult {
        let leg = |mib_s| Leg {
            mib_s,
            wall_s: 1.0,
            client_cpu_s: 0.5,
            server_cpu_s: 0.5,
            client_rss_kib: 1024,
            server_rss_kib: 1024,
        };
        CellResult {
            cell: Cell {
                pair,
                io_mib: 1,
                mode,
            },
            write: rates.iter().map(|r| leg(r.0)).collect(),
            read: rates.iter().map(|r| leg(r.1)).collect(),
            error: None,
        }
    }

    #[test]
    fn goals_give_the_ratio_of_medians_and_each_round() {
        let [oo, ..] = Pair::ALL;
        let results = [
            cell(
                oo,
                Mode::GOALS[0],
                &[(100.0, 200.0), (100.0, 200.0), (100.0, 100.0)],
            ),
            cell(
                oo,
                Mode::GOALS[1],
                &[(96.0, 180.0), (90.0, 200.0), (99.0, 100.0)],
            ),
        ];
        let mut s = String::new();
        goals(&mut s, &results, 1024);
        assert!(s.contains("round by round"), "{s}");
        // write: medians 96 / 100; rounds 0.96, 0.90, 0.99, two of them at least 0.95.
        assert!(
            s.contains(
                "signed / unsigned, write | ≥ 0.95 | 0.96 | met | 0.96 | 0.96 0.90 0.99 (2 of 3) |"
            ),
            "{s}"
        );
        // read: medians 180 / 200; rounds 0.90, 1.00, 1.00.
        assert!(
            s.contains(
                "signed / unsigned, read | ≥ 0.95 | 0.90 | not met | 1.00 | 0.90 1.00 1.00 (2 of 3) |"
            ),
            "{s}"
        );
        // Goals whose cells did not run are left out.
        assert!(!s.contains("Samba"), "{s}");
    }
}
