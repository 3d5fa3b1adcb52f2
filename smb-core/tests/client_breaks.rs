//! Our client state machine against our server state machine, in memory, with two client
//! connections to one server (shared oplock table): client A holds a batch oplock or an RWH
//! lease, client B opens the same file, A receives the break notification (unsigned, MessageId
//! all ones) on its signed session, acknowledges it (signed; the server verifies it), the
//! response is verified by A, and only then does B's CREATE, kept waiting with an interim
//! STATUS_PENDING response, complete. Every dialect and signing algorithm.

use std::sync::Arc;

use smb_core::auth::UserTable;
use smb_core::conn::client::{
    Caching, ClientConfig, ClientConnection, ClientEvent, Credentials, OpenRequest, ResponseBody,
};
use smb_core::conn::server::{ServerConfig, ServerConnection, ShareConfig};
use smb_core::conn::share::MemoryShare;
use smb_core::env::{FixedClock, SeededRandom};
use smb_core::header::{Command, Dialect, Header, NtStatus};
use smb_core::messages::create::OplockLevel;
use smb_core::messages::lease::lease_state;
use smb_core::policy::SigningPolicy;
use smb_core::signing::Algorithm;

const USER: &str = "alice";
const PASSWORD: &str = "Passw0rd!";
const NOW: u64 = 134_083_000_000_000_000;

/// One client connection and its server side.
struct Side {
    client: ClientConnection,
    server: ServerConnection,
    events: Vec<ClientEvent>,
    /// Messages from the server to this client, in order.
    received: Vec<Vec<u8>>,
    /// Messages from this client to the server, in order.
    sent: Vec<Vec<u8>>,
}

impl Side {
    fn new(cfg: &Arc<ServerConfig>, dialect: Dialect, alg: Algorithm, seed: u64) -> Side {
        let mut config = ClientConfig::with_sources(
            "server",
            Credentials::password(USER, "", PASSWORD),
            Arc::new(FixedClock(NOW)),
            Arc::new(SeededRandom::new(seed)),
        )
        .only_dialect(dialect);
        config.signing = SigningPolicy::new(true);
        config.signing_algorithms = vec![alg];
        Side {
            client: ClientConnection::new(config),
            server: ServerConnection::new(cfg.clone(), Some(format!("127.0.0.{seed}:1"))),
            events: Vec::new(),
            received: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Moves messages both ways (server wake-ups included) until nothing moves.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        while let Some(m) = self.client.poll_transmit() {
            moved = true;
            self.sent.push(m.clone());
            self.server.handle_input(&m);
            self.server.run_share_requests_inline();
        }
        self.server.handle_wakeup();
        self.server.run_share_requests_inline();
        while let Some(m) = self.server.poll_transmit() {
            moved = true;
            let m = m.into_vec();
            self.client
                .handle_input(&m)
                .unwrap_or_else(|e| panic!("client refused a server message: {e}"));
            self.received.push(m);
        }
        while self.server.poll_event().is_some() {}
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
        moved
    }

    fn answer(&self, id: u64) -> Option<(NtStatus, ResponseBody)> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Response {
                id: i,
                status,
                body,
                ..
            } if *i == id => Some((*status, body.clone())),
            _ => None,
        })
    }
}

/// Pumps both sides until neither moves.
fn settle(a: &mut Side, b: &mut Side) {
    for _ in 0..100 {
        let moved_a = a.pump();
        let moved_b = b.pump();
        if !moved_a && !moved_b {
            return;
        }
    }
    panic!("the connections never went quiet");
}

fn server_config() -> Arc<ServerConfig> {
    let mut users = UserTable::new();
    users.add_password(USER, PASSWORD);
    Arc::new(ServerConfig {
        users: Arc::new(users),
        shares: vec![ShareConfig {
            name: "data".into(),
            backend: Arc::new(MemoryShare::new()),
        }],
        signing: SigningPolicy::new(true),
        clock: Arc::new(FixedClock(NOW)),
        random: Arc::new(SeededRandom::new(1)),
        ..ServerConfig::default()
    })
}

/// NEGOTIATE, SESSION_SETUP (signed session) and TREE_CONNECT; returns the TreeId.
fn login(s: &mut Side, other: &mut Side) -> u32 {
    let id = s.client.negotiate().unwrap();
    settle(s, other);
    assert_eq!(s.answer(id).unwrap().0, NtStatus::SUCCESS);
    let id = s.client.session_setup().unwrap();
    settle(s, other);
    assert_eq!(s.answer(id).unwrap().0, NtStatus::SUCCESS);
    assert!(s.client.session_signed());
    let id = s.client.tree_connect(r"\\server\data").unwrap();
    settle(s, other);
    match s.answer(id) {
        Some((NtStatus::SUCCESS, ResponseBody::TreeConnect { tree_id, .. })) => tree_id,
        other => panic!("TREE_CONNECT: {other:?}"),
    }
}

fn combos() -> Vec<(Dialect, Algorithm)> {
    vec![
        (Dialect::SMB202, Algorithm::HmacSha256),
        (Dialect::SMB21, Algorithm::HmacSha256),
        (Dialect::SMB30, Algorithm::AesCmac),
        (Dialect::SMB302, Algorithm::AesCmac),
        (Dialect::SMB311, Algorithm::AesGmac),
        (Dialect::SMB311, Algorithm::AesCmac),
        (Dialect::SMB311, Algorithm::HmacSha256),
    ]
}

/// A opens with `caching`, B opens the same file; A's break, its acknowledgement and B's
/// waiting CREATE as described in the module documentation. Returns A's break event.
fn break_and_acknowledge(dialect: Dialect, alg: Algorithm, caching: Caching) -> ClientEvent {
    let cfg = server_config();
    let mut a = Side::new(&cfg, dialect, alg, 2);
    let mut b = Side::new(&cfg, dialect, alg, 3);
    let ta = login(&mut a, &mut b);
    let tb = login(&mut b, &mut a);
    let id = a
        .client
        .create(ta, &OpenRequest::write_file("f.bin").with_caching(caching))
        .unwrap();
    settle(&mut a, &mut b);
    let file = match a.answer(id) {
        Some((NtStatus::SUCCESS, ResponseBody::Create { file_id, .. })) => file_id,
        other => panic!("{dialect:?}: A's CREATE: {other:?}"),
    };
    let held_before = a.received.len();

    // B's CREATE waits: an interim response, no answer yet; A gets the notification.
    let b_open = b
        .client
        .create(tb, &OpenRequest::read_file("f.bin"))
        .unwrap();
    settle(&mut a, &mut b);
    assert_eq!(
        b.answer(b_open),
        None,
        "{dialect:?}: B's CREATE waits for A"
    );
    assert_eq!(b.client.interim_responses(), 1, "{dialect:?}");
    let notification = a.received[held_before..]
        .iter()
        .find(|m| Header::parse(m).unwrap().message_id == u64::MAX)
        .expect("a break notification")
        .clone();
    assert!(
        !Header::parse(&notification).unwrap().is_signed(),
        "break notifications are unsigned"
    );
    assert!(a.client.failure().is_none(), "accepted on a signed session");
    let event = a
        .events
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e,
                ClientEvent::OplockBreak { .. } | ClientEvent::LeaseBreak { .. }
            )
        })
        .expect("A reports the break")
        .clone();

    // A acknowledges (signed); the server takes it, answers A and completes B's CREATE.
    let sent_before = a.sent.len();
    let ack = match event {
        ClientEvent::OplockBreak {
            file_id,
            to,
            ack_required: true,
            ..
        } => {
            assert_eq!(file_id, file);
            a.client.acknowledge_oplock_break(file_id, to).unwrap()
        }
        ClientEvent::LeaseBreak {
            key,
            to,
            ack_required: true,
            ..
        } => a.client.acknowledge_lease_break(key, to).unwrap(),
        ref other => panic!("{dialect:?}: no acknowledgement wanted: {other:?}"),
    };
    settle(&mut a, &mut b);
    let ack_msg = &a.sent[sent_before];
    let h = Header::parse(ack_msg).unwrap();
    assert_eq!((h.command, h.message_id), (Command::OPLOCK_BREAK, ack));
    assert!(h.is_signed(), "{dialect:?}: the acknowledgement is signed");
    match a.answer(ack) {
        Some((NtStatus::SUCCESS, ResponseBody::OplockBreak { .. }))
        | Some((NtStatus::SUCCESS, ResponseBody::LeaseBreak { .. })) => {}
        other => panic!("{dialect:?}: acknowledgement answered {other:?}"),
    }
    match b.answer(b_open) {
        Some((NtStatus::SUCCESS, ResponseBody::Create { .. })) => {}
        other => panic!("{dialect:?}: B's CREATE after the acknowledgement: {other:?}"),
    }
    assert!(a.client.failure().is_none() && b.client.failure().is_none());
    event
}

#[test]
fn a_batch_oplock_breaks_to_level_two_on_every_dialect_and_algorithm() {
    for (dialect, alg) in combos() {
        let ev = break_and_acknowledge(dialect, alg, Caching::Oplock(OplockLevel::BATCH));
        assert!(
            matches!(
                ev,
                ClientEvent::OplockBreak {
                    from: OplockLevel::BATCH,
                    to: OplockLevel::II,
                    ack_required: true,
                    ..
                }
            ),
            "{dialect:?} {alg:?}: {ev:?}"
        );
    }
}

#[test]
fn an_rwh_lease_breaks_to_rh_on_every_dialect_and_algorithm_with_leases() {
    let rh = lease_state::READ_CACHING | lease_state::HANDLE_CACHING;
    for (dialect, alg) in combos() {
        if dialect == Dialect::SMB202 {
            continue;
        }
        let key = *b"in-memory-lease!";
        let caching = Caching::Lease {
            key,
            state: lease_state::ALL,
        };
        let ev = break_and_acknowledge(dialect, alg, caching);
        assert!(
            matches!(
                ev,
                ClientEvent::LeaseBreak { key: k, from: lease_state::ALL, to, ack_required: true, .. }
                    if k == key && to == rh
            ),
            "{dialect:?} {alg:?}: {ev:?}"
        );
    }
}
