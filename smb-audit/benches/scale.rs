//! Scale and throughput of `smb-audit`, side by side with the tools people use today.
//!
//! ```text
//! cargo bench -p smb-audit --bench scale -- scan [HOSTS] [RUNS]   # default 1024 hosts, 3 runs
//! cargo bench -p smb-audit --bench scale -- pcap [GIB] [RUNS]     # default 2 GiB, 3 runs
//! ```
//!
//! `scan`: a fleet of our servers, one listener per 127.1.x.y address (all in this process), is
//! scanned by `smb-audit scan` and by `nmap --script smb2-security-mode` over the same target
//! list; wall time and the scanner's peak resident memory (VmHWM from /proc, sampled every
//! 5 ms) are printed per run, then the medians.
//!
//! `pcap`: smbclient moves a large file to and from our server (signed, AES-GMAC on 3.1.1)
//! under dumpcap until the capture reaches the size asked; then `smb-audit pcap` (with the
//! password: every signature verified; and without) and `tshark` with the seed's display
//! filter read the same file, alternately.
//!
//! Not a test: nothing here asserts speed. Figures go to BENCHMARKS.md by hand.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "alice";
const PASSWORD: &str = "Passw0rd!";
/// The seed's filter for SMB2+, as "Active Directory Hardening Series - Part 6" gives it.
const SEED_FILTER: &str =
    "smb2.flags.signature == 0 && smb2.cmd != 0x00 && smb2.cmd != 0x01 && smb2.cmd != 0x0F";

/// Wall time, peak RSS (KiB) and stdout of a command (stderr goes to `last_stderr()`).
fn measured(cmd: &mut Command) -> (Duration, u64, String) {
    let start = Instant::now();
    let out_path = std::env::temp_dir().join(format!("smb-audit-bench-{}.out", std::process::id()));
    let out_file = fs::File::create(&out_path).expect("temp file");
    let err_file = fs::File::create(stderr_path()).expect("temp file");
    let mut child = cmd
        .stdout(out_file)
        .stderr(err_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = fs::read_to_string(&status_path) {
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak = peak.max(kib);
                }
            }
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    let out = fs::read_to_string(&out_path).unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    (elapsed, peak, out)
}

fn stderr_path() -> PathBuf {
    std::env::temp_dir().join(format!("smb-audit-bench-{}.err", std::process::id()))
}

fn last_stderr() -> String {
    fs::read_to_string(stderr_path()).unwrap_or_default()
}

/// dumpcap on lo with a 1 GiB kernel buffer (the default one drops packets when smbclient
/// moves 8 MiB messages over loopback). It announces itself some 20 ms before it records, so
/// this waits for the file and then a second more.
fn dumpcap(port: u16, file: &Path) -> std::process::Child {
    let mut child = Command::new(tests::require_tool("dumpcap"))
        .args([
            "-q",
            "-i",
            "lo",
            "-B",
            "1024",
            "-f",
            &format!("tcp port {port}"),
            "-w",
        ])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dumpcap");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.exists() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dumpcap wrote no file");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    child
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn scratch(name: &str) -> PathBuf {
    let d = tests::workspace_root()
        .join("target")
        .join("bench-scratch")
        .join(format!("{name}-{}", std::process::id()));
    fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Starts one of our servers per address in a background runtime.
fn fleet(addrs: &[SocketAddr], share: &Path) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for a in addrs {
            let settings = smb_server::Settings {
                listen: Some(a.to_string()),
                share: vec![format!("data={}", share.display())],
                user: vec![format!("{USER}:{PASSWORD}")],
                ..Default::default()
            };
            let server = smb_server::Server::bind(settings.resolve().expect("settings"))
                .await
                .unwrap_or_else(|e| panic!("cannot listen on {a}: {e:#}"));
            tokio::spawn(server.run(std::future::pending()));
        }
    });
    rt
}

fn bench_scan(hosts: usize, runs: usize) {
    let nmap = tests::require_tool("nmap");
    let dir = scratch("scan");
    let share = dir.join("share");
    fs::create_dir_all(&share).unwrap();
    let port = 4455;
    let addrs: Vec<SocketAddr> = (0..hosts)
        .map(|i| SocketAddr::from(([127, 1, (i / 250) as u8, (i % 250 + 1) as u8], port)))
        .collect();
    let t = Instant::now();
    let _rt = fleet(&addrs, &share);
    eprintln!("fleet of {hosts} servers up in {:?}", t.elapsed());
    let list = dir.join("targets.txt");
    let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    fs::write(&list, ips.join("\n") + "\n").unwrap();

    let (mut ours_t, mut ours_m, mut nmap_t, mut nmap_m) = (vec![], vec![], vec![], vec![]);
    for run in 1..=runs {
        let (d, peak, out) = measured(
            Command::new(env!("CARGO_BIN_EXE_smb-audit"))
                .args(["scan", "-p", &port.to_string(), "--json", "-"])
                .arg(format!("@{}", list.display())),
        );
        let secure = out.matches(r#""verdict":"SECURE""#).count();
        println!(
            "run {run}: smb-audit scan  {hosts} hosts: {:.2} s, peak {:.1} MiB, {secure} SECURE",
            d.as_secs_f64(),
            peak as f64 / 1024.0
        );
        assert_eq!(secure, hosts, "smb-audit did not read every host");
        ours_t.push(d.as_secs_f64());
        ours_m.push(peak as f64 / 1024.0);

        let (d, peak, out) = measured(
            Command::new(&nmap)
                .args([
                    "-Pn",
                    "-n",
                    "-p",
                    &port.to_string(),
                    "--script",
                    "smb2-security-mode",
                ])
                .args(["--script-args", &format!("smbport={port}"), "-iL"])
                .arg(&list),
        );
        let read = out.matches("Message signing enabled and required").count();
        println!(
            "run {run}: nmap smb2-security-mode {hosts} hosts: {:.2} s, peak {:.1} MiB, {read} read",
            d.as_secs_f64(),
            peak as f64 / 1024.0
        );
        nmap_t.push(d.as_secs_f64());
        nmap_m.push(peak as f64 / 1024.0);
    }
    let (ot, nt) = (median(ours_t), median(nmap_t));
    println!(
        "median over {runs} runs, {hosts} hosts: smb-audit scan {ot:.2} s ({:.0} hosts/s), peak \
         {:.1} MiB; nmap {nt:.2} s ({:.0} hosts/s), peak {:.1} MiB; nmap/smb-audit time {:.1}x",
        hosts as f64 / ot,
        median(ours_m),
        hosts as f64 / nt,
        median(nmap_m),
        nt / ot
    );
    let _ = fs::remove_dir_all(&dir);
}

fn bench_pcap(gib: f64, runs: usize) {
    let tshark = tests::require_tool("tshark");
    let smbclient = tests::require_tool("smbclient");
    let dir = scratch("pcap");
    let share = dir.join("share");
    fs::create_dir_all(&share).unwrap();
    let port = tests::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let _rt = fleet(&[addr], &share);
    let big = dir.join("big.bin");
    fs::write(&big, tests::test_bytes(256 << 20, 1)).unwrap();
    let path = dir.join("big.pcapng");
    let mut capture = dumpcap(port, &path);
    let want = (gib * (1u64 << 30) as f64) as u64;
    let t = Instant::now();
    let mut moved = 0u64;
    while moved < want {
        let out = tests::run_with_timeout(
            Command::new(&smbclient)
                .args(["//127.0.0.1/data", "-p", &port.to_string(), "-U"])
                .arg(format!("{USER}%{PASSWORD}"))
                .args(["--option=client signing=required", "-c"])
                .arg(format!(
                    "put {} big.bin; get big.bin /dev/null; rm big.bin",
                    big.display()
                )),
            Duration::from_secs(600),
        );
        assert!(out.status.success(), "{}", tests::show(&out));
        moved += 2 * (256 << 20);
    }
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let _ = capture.wait();
    let size = fs::metadata(&path).unwrap().len();
    eprintln!(
        "capture of {:.2} GiB ({} GiB moved) written in {:?}: {}",
        size as f64 / (1u64 << 30) as f64,
        moved >> 30,
        t.elapsed(),
        path.display()
    );
    let mib = size as f64 / (1 << 20) as f64;
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        (
            "smb-audit pcap --password (verify every signature)",
            vec![],
            vec![],
        ),
        ("smb-audit pcap (count only)", vec![], vec![]),
        ("tshark -Y seed filter", vec![], vec![]),
    ];
    for run in 1..=runs {
        for (i, row) in rows.iter_mut().enumerate() {
            let mut cmd = match i {
                0 | 1 => {
                    let mut c = Command::new(env!("CARGO_BIN_EXE_smb-audit"));
                    c.arg("pcap")
                        .arg(&path)
                        .args(["--port", &port.to_string(), "--json", "-"]);
                    if i == 0 {
                        c.args(["--password", &format!("{USER}%{PASSWORD}")]);
                    }
                    c
                }
                _ => {
                    let mut c = Command::new(&tshark);
                    c.arg("-r")
                        .arg(&path)
                        .args([
                            "-n",
                            "-d",
                            &format!("tcp.port=={port},nbss"),
                            "-Y",
                            SEED_FILTER,
                        ])
                        .args(["-T", "fields", "-e", "frame.number"]);
                    c
                }
            };
            let (d, peak, out) = measured(&mut cmd);
            let summary = if i < 2 {
                let v: Vec<serde_json::Value> = out
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                let get = |k: &str| v.iter().map(|s| s[k].as_u64().unwrap_or(0)).sum::<u64>();
                format!(
                    "{} sessions, {} signed, {} verified, {} bad, {} notes of lost bytes",
                    v.len(),
                    get("signed"),
                    get("verified"),
                    get("bad_signature"),
                    last_stderr().matches("lost TCP bytes").count()
                )
            } else {
                format!("{} frames match", out.lines().count())
            };
            println!(
                "run {run}: {}: {:.2} s, {:.0} MiB/s, peak {:.1} MiB ({summary})",
                row.0,
                d.as_secs_f64(),
                mib / d.as_secs_f64(),
                peak as f64 / 1024.0
            );
            row.1.push(d.as_secs_f64());
            row.2.push(peak as f64 / 1024.0);
        }
    }
    println!("median over {runs} runs of a {mib:.0} MiB capture:");
    let tshark_t = median(rows[2].1.clone());
    for (name, t, m) in rows {
        let t = median(t);
        println!(
            "  {name}: {t:.2} s, {:.0} MiB/s, peak {:.1} MiB, tshark/this time {:.2}x",
            mib / t,
            median(m),
            tshark_t / t
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let num = |i: usize, default: f64| -> f64 {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
    };
    match args.first().map(String::as_str) {
        Some("scan") => bench_scan(num(1, 1024.0) as usize, num(2, 3.0) as usize),
        Some("pcap") => bench_pcap(num(1, 2.0), num(2, 3.0) as usize),
        _ => eprintln!("usage: cargo bench -p smb-audit --bench scale -- scan [HOSTS] [RUNS] | pcap [GIB] [RUNS]"),
    }
}
