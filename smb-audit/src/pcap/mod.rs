//! `smb-audit pcap`: unsigned SMB and signature checks in captures.
//!
//! pcap and pcapng (the `pcap-file` crate) are read one packet at a time; each TCP connection
//! to an SMB port is reassembled per direction ([`tcp`]), cut into Direct-TCP/NetBIOS frames
//! and analysed ([`smb`]). Memory is bounded by the open connections (each holds at most one
//! SMB frame and [`tcp::MAX_PENDING`] out-of-order bytes per direction), not the file size.

pub mod packet;
pub mod smb;
pub mod tcp;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use zeroize::Zeroizing;

use crate::scan::Verdict;
use smb::{push_note, Conn, Framer, Secrets, SessionReport};
use tcp::{Chunk, Stream};

#[derive(Debug, clap::Args)]
pub struct PcapArgs {
    /// pcap or pcapng files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// SMB ports besides 445 and 139 (repeatable).
    #[arg(long = "port")]
    pub ports: Vec<u16>,
    /// [DOMAIN\]USER%PASSWORD to derive NTLMv2 session keys (repeatable). Never printed.
    #[arg(long = "password", value_name = "[DOMAIN\\]USER%PASS")]
    pub passwords: Vec<String>,
    /// SESSIONID:HEXKEY, a session key (repeatable; SessionId in hex, 0x optional).
    #[arg(long = "keys", value_name = "SESSIONID:HEXKEY")]
    pub keys: Vec<String>,
    /// JSON Lines, one object per session, to FILE or `-`.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
}

/// Verdict and reasons of one session, in the seed's words.
pub(crate) fn verdict(r: &mut SessionReport) {
    let mut reasons = Vec::new();
    if r.unsigned > 0 {
        reasons.push(format!(
            "{} unsigned messages after authentication ({} from the client, like event 3021; \
             {} from the server, like event 31998)",
            r.unsigned, r.unsigned_from_client, r.unsigned_from_server
        ));
    }
    if let Some(n) = r.bad_signature.filter(|n| *n > 0) {
        reasons.push(format!(
            "{n} messages with a bad signature (frames {:?})",
            r.bad_signature_frames
        ));
    }
    if r.smb1 {
        reasons.push("SMBv1 session".into());
    }
    if r.guest || r.anonymous {
        reasons.push(format!(
            "{} session: cannot be signed",
            if r.guest { "guest" } else { "anonymous" }
        ));
    }
    r.verdict = if reasons.is_empty() {
        reasons.push("every message after authentication is signed".into());
        Verdict::Secure
    } else {
        Verdict::Vulnerable
    };
    r.reasons = reasons;
}

/// Parses `--password` and `--keys`.
pub fn secrets(passwords: &[String], keys: &[String]) -> Result<Secrets> {
    let mut s = Secrets::default();
    for p in passwords {
        let (who, pass) = p
            .split_once('%')
            .context("--password needs [DOMAIN\\]USER%PASSWORD")?;
        let (domain, user) = who.split_once(['\\', '/']).unwrap_or(("", who));
        s.passwords.push((
            user.to_lowercase(),
            domain.to_lowercase(),
            Zeroizing::new(pass.to_owned()),
        ));
    }
    for k in keys {
        let (sid, hexkey) = k.split_once(':').context("--keys needs SESSIONID:HEXKEY")?;
        let sid = u64::from_str_radix(sid.trim_start_matches("0x"), 16)
            .with_context(|| format!("--keys: {sid:?} is not a hex SessionId"))?;
        let key = hex::decode(hexkey).context("--keys: the key is not hex")?;
        anyhow::ensure!(
            !key.is_empty() && key.len() <= 32,
            "--keys: a key is 16 bytes"
        );
        s.keys.insert(sid, Zeroizing::new(key));
    }
    Ok(s)
}

/// One TCP connection to an SMB port.
#[derive(Debug)]
struct Flow {
    to_server: Stream,
    to_client: Stream,
    client_frames: Framer,
    server_frames: Framer,
    conn: Conn,
    closed: u8,
}

/// The analysis of one or more captures.
#[derive(Debug)]
pub struct Analyzer {
    ports: BTreeSet<u16>,
    secrets: Secrets,
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    pub sessions: Vec<SessionReport>,
    pub notes: Vec<String>,
    pub packets: u64,
    /// Hosts seen offering (clients) or speaking (servers) SMB1.
    pub smb1_clients: BTreeSet<String>,
    pub smb1_servers: BTreeSet<String>,
    file: String,
}

impl Analyzer {
    pub fn new(extra_ports: &[u16], secrets: Secrets) -> Analyzer {
        let mut ports: BTreeSet<u16> = [445, 139].into();
        ports.extend(extra_ports);
        Analyzer {
            ports,
            secrets,
            flows: HashMap::new(),
            sessions: Vec::new(),
            notes: Vec::new(),
            packets: 0,
            smb1_clients: BTreeSet::new(),
            smb1_servers: BTreeSet::new(),
            file: String::new(),
        }
    }

    /// Reads one capture (pcap or pcapng). Returns the packets read; a read error after some
    /// packets is a note, the packets before it count.
    pub fn read(&mut self, name: &str, input: impl Read) -> Result<u64> {
        self.file = name.to_owned();
        let mut input = BufReader::with_capacity(1 << 20, input);
        let magic = {
            use std::io::BufRead;
            let b = input.fill_buf()?;
            anyhow::ensure!(b.len() >= 4, "{name}: too short to be a capture");
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        let before = self.packets;
        let mut frame_no = 0u64;
        if magic == 0x0A0D_0D0A {
            let mut r = PcapNgReader::new(input).with_context(|| format!("{name}: bad pcapng"))?;
            let mut links: Vec<DataLink> = Vec::new();
            while let Some(block) = r.next_block() {
                let block = match block {
                    Ok(b) => b,
                    Err(e) => {
                        push_note(
                            &mut self.notes,
                            format!("{name}: unreadable after frame {frame_no}: {e}"),
                        );
                        break;
                    }
                };
                match block {
                    Block::SectionHeader(_) => links.clear(),
                    Block::InterfaceDescription(i) => {
                        if !packet::supported(i.linktype) {
                            push_note(&mut self.notes, format!("{name}: link type {:?} is not supported; its packets are skipped", i.linktype));
                        }
                        links.push(i.linktype);
                    }
                    Block::EnhancedPacket(p) => {
                        frame_no += 1;
                        let link = links.get(p.interface_id as usize).copied();
                        self.packet(link, &p.data, frame_no);
                    }
                    Block::SimplePacket(p) => {
                        frame_no += 1;
                        self.packet(links.first().copied(), &p.data, frame_no);
                    }
                    Block::Packet(p) => {
                        frame_no += 1;
                        let link = links.get(usize::from(p.interface_id)).copied();
                        self.packet(link, &p.data, frame_no);
                    }
                    _ => {}
                }
            }
        } else {
            let mut r = PcapReader::new(input)
                .with_context(|| format!("{name}: not a pcap or pcapng file"))?;
            let link = r.header().datalink;
            if !packet::supported(link) {
                anyhow::bail!("{name}: link type {link:?} is not supported");
            }
            while let Some(p) = r.next_packet() {
                match p {
                    Ok(p) => {
                        frame_no += 1;
                        self.packet(Some(link), &p.data, frame_no);
                    }
                    Err(e) => {
                        push_note(
                            &mut self.notes,
                            format!("{name}: unreadable after frame {frame_no}: {e}"),
                        );
                        break;
                    }
                }
            }
        }
        Ok(self.packets - before)
    }

    /// One captured frame of `link` (None: an interface whose link type is unknown).
    pub fn packet(&mut self, link: Option<DataLink>, data: &[u8], frame_no: u64) {
        self.packets += 1;
        let Some(link) = link.filter(|l| packet::supported(*l)) else {
            return;
        };
        let Some(seg) = packet::tcp_segment(link, data) else {
            return;
        };
        let (client, server, from_client) = if self.ports.contains(&seg.dst.port()) {
            (seg.src, seg.dst, true)
        } else if self.ports.contains(&seg.src.port()) {
            (seg.dst, seg.src, false)
        } else {
            return;
        };
        let key = (client, server);
        if seg.syn && from_client {
            // A new connection on a reused port pair ends the old one.
            if let Some(old) = self.flows.remove(&key) {
                self.close(old);
            }
        }
        let file = self.file.clone();
        let flow = self.flows.entry(key).or_insert_with(|| Flow {
            to_server: Stream::default(),
            to_client: Stream::default(),
            client_frames: Framer::default(),
            server_frames: Framer::default(),
            conn: Conn::new(&file, client, server),
            closed: 0,
        });
        let Flow {
            to_server,
            to_client,
            client_frames,
            server_frames,
            conn,
            ..
        } = flow;
        let (stream, framer) = if from_client {
            (to_server, client_frames)
        } else {
            (to_client, server_frames)
        };
        if seg.syn {
            stream.syn(seg.seq);
        }
        let notes = &mut self.notes;
        let secrets = &self.secrets;
        let mut deliver = |c: Chunk<'_>| match c {
            Chunk::Gap => {
                push_note(
                    notes,
                    format!("{client} -> {server}: lost TCP bytes; resynchronised"),
                );
                framer.gap();
            }
            Chunk::Data(d) => {
                let mut frames = Vec::new();
                framer.push(d, notes, &mut |f| frames.push(f.to_vec()));
                for f in frames {
                    conn.frame(from_client, &f, frame_no, secrets, notes);
                }
            }
        };
        stream.push(seg.seq, seg.payload, &mut deliver);
        if seg.rst || seg.fin {
            stream.finish(&mut deliver);
            flow.closed += if seg.rst { 2 } else { 1 };
            if flow.closed >= 2 {
                if let Some(f) = self.flows.remove(&key) {
                    self.close(f);
                }
            }
        }
    }

    fn close(&mut self, flow: Flow) {
        let (c, s) = (
            flow.conn.client_addr().ip().to_string(),
            flow.conn.server_addr().ip().to_string(),
        );
        if flow.conn.smb1_offered {
            self.smb1_clients.insert(c);
        }
        if flow.conn.smb1_spoken {
            self.smb1_servers.insert(s);
        }
        self.sessions.extend(flow.conn.into_reports());
    }

    /// Ends every open connection (the end of the captures).
    pub fn finish(&mut self) {
        let keys: Vec<_> = self.flows.keys().copied().collect();
        for k in keys {
            if let Some(f) = self.flows.remove(&k) {
                self.close(f);
            }
        }
        self.sessions.sort_by(|a, b| {
            (&a.server, &a.client, &a.session_id).cmp(&(&b.server, &b.client, &b.session_id))
        });
    }
}

fn host_of(addr: &str) -> String {
    addr.parse::<SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_owned())
}

/// The per-host rollup: who would break when signing is enforced.
#[derive(Debug, Default)]
pub struct Rollup {
    /// Client host -> unsigned messages it sent (like event 3021).
    pub clients_not_signing: BTreeMap<String, u64>,
    /// Server host -> unsigned messages it sent (like event 31998).
    pub servers_not_signing: BTreeMap<String, u64>,
    pub guest: BTreeSet<String>,
}

pub fn rollup(sessions: &[SessionReport]) -> Rollup {
    let mut r = Rollup::default();
    for s in sessions {
        if s.unsigned_from_client > 0 {
            *r.clients_not_signing.entry(host_of(&s.client)).or_default() += s.unsigned_from_client;
        }
        if s.unsigned_from_server > 0 {
            *r.servers_not_signing.entry(host_of(&s.server)).or_default() += s.unsigned_from_server;
        }
        if s.guest || s.anonymous {
            r.guest
                .insert(format!("{} -> {}", host_of(&s.client), host_of(&s.server)));
        }
    }
    r
}

fn print_table(a: &Analyzer) {
    println!(
        "{:<22} {:<22} {:<18} {:<6} {:<11} {:<14} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}  VERDICT",
        "CLIENT",
        "SERVER",
        "SESSION",
        "DIAL",
        "ALGORITHM",
        "USER",
        "AFTER",
        "SIGNED",
        "UNSIGN",
        "EXEMPT",
        "OK",
        "BAD"
    );
    for s in &a.sessions {
        let user = match (&s.domain, &s.user) {
            (Some(d), Some(u)) if !d.is_empty() => format!("{d}\\{u}"),
            (_, Some(u)) => u.clone(),
            _ => "?".into(),
        };
        let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<22} {:<22} {:<18} {:<6} {:<11} {:<14} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}  {}",
            s.client,
            s.server,
            s.session_id,
            s.dialect.as_deref().unwrap_or("?"),
            s.signing_algorithm.as_deref().unwrap_or("?"),
            user,
            s.after_auth,
            s.signed,
            s.unsigned,
            s.exempt.total(),
            opt(s.verified),
            opt(s.bad_signature),
            s.verdict.as_str()
        );
        for why in &s.reasons {
            println!("    {why}");
        }
    }
    let r = rollup(&a.sessions);
    println!();
    for (h, n) in &r.clients_not_signing {
        println!("client {h} does not sign: {n} unsigned requests (would be refused once the server requires signing; like event 3021)");
    }
    for (h, n) in &r.servers_not_signing {
        println!("server {h} does not sign: {n} unsigned responses (like event 31998; RequireSecuritySignature = 0)");
    }
    for h in &a.smb1_clients {
        println!("client {h} offers SMBv1");
    }
    for h in &a.smb1_servers {
        println!("server {h} speaks SMBv1");
    }
    for g in &r.guest {
        println!("guest or anonymous session: {g}");
    }
}

pub fn run(args: PcapArgs) -> Result<ExitCode> {
    let secrets = secrets(&args.passwords, &args.keys)?;
    let mut a = Analyzer::new(&args.ports, secrets);
    let mut read_any = false;
    for path in &args.files {
        let name = path.display().to_string();
        match open(path).and_then(|f| a.read(&name, f)) {
            Ok(_) => read_any = true,
            Err(e) => eprintln!("smb-audit: {e:#}"),
        }
    }
    a.finish();
    for n in &a.notes {
        eprintln!("note: {n}");
    }
    if !read_any {
        return Ok(ExitCode::from(2));
    }
    match args.json.as_deref() {
        Some("-") => write_json(&mut std::io::stdout().lock(), &a.sessions)?,
        Some(p) => {
            let mut f = std::io::BufWriter::new(
                File::create(p).with_context(|| format!("cannot create {p}"))?,
            );
            write_json(&mut f, &a.sessions)?;
            print_table(&a);
        }
        None => print_table(&a),
    }
    let vulnerable =
        a.sessions.iter().any(|s| s.verdict == Verdict::Vulnerable) || !a.smb1_servers.is_empty();
    Ok(if vulnerable {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn open(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

fn write_json(out: &mut dyn Write, sessions: &[SessionReport]) -> Result<()> {
    for s in sessions {
        writeln!(out, "{}", serde_json::to_string(s)?)?;
    }
    out.flush()?;
    Ok(())
}
