//! A client and a server state machine wired back to back in memory: no sockets, no threads,
//! and (with a fixed clock and seeded randomness) the same bytes on every run.
//!
//! Run it with `cargo run -p smb-core --example in_memory_pair`.

use std::sync::Arc;

use smb_core::auth::UserTable;
use smb_core::env::{FixedClock, SeededRandom};
use smb_core::{
    ClientConfig, ClientConnection, ClientEvent, Credentials, Dialect, Header, NtStatus,
    ResponseBody, ServerConfig, ServerConnection, ServerEvent, ShareConfig,
};

/// Moves every queued message to the other side until both are quiet; returns the
/// client's events.
fn drive(client: &mut ClientConnection, server: &mut ServerConnection) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    loop {
        let mut moved = false;
        while let Some(request) = client.poll_transmit() {
            moved = true;
            server.handle_input(&request);
            while let Some(event) = server.poll_event() {
                if let ServerEvent::SessionEstablished { signed, .. } = event {
                    println!("server: session established, signed={signed}");
                }
            }
        }
        while let Some(response) = server.poll_transmit() {
            moved = true;
            let header = Header::parse(&response).expect("the server sends valid headers");
            println!(
                "server -> client: {} {:?} signed={}",
                header.command,
                header.status,
                header.is_signed()
            );
            client
                .handle_input(&response)
                .expect("an untampered exchange");
        }
        events.extend(std::iter::from_fn(|| client.poll_event()));
        if !moved {
            return events;
        }
    }
}

/// The answer to request `id` among `events`.
fn answer(events: &[ClientEvent], id: u64) -> (NtStatus, ResponseBody) {
    events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Response {
                id: i,
                status,
                body,
                ..
            } if *i == id => Some((*status, body.clone())),
            _ => None,
        })
        .expect("every request is answered")
}

fn main() {
    // 2026-11-24 as a FILETIME.
    let now = 134_083_000_000_000_000;
    let mut users = UserTable::new();
    users.add_password("alice", "Passw0rd!");
    let server_config = ServerConfig {
        users: Arc::new(users),
        shares: vec![ShareConfig {
            name: "data".into(),
            backend: Arc::new(smb_core::conn::share::MemoryShare::new()),
        }],
        clock: Arc::new(FixedClock(now)),
        random: Arc::new(SeededRandom::new(1)),
        ..ServerConfig::default()
    };
    let mut server = ServerConnection::new(Arc::new(server_config), None);
    let client_config = ClientConfig::with_sources(
        "server",
        Credentials::password("alice", "", "Passw0rd!"),
        Arc::new(FixedClock(now)),
        Arc::new(SeededRandom::new(2)),
    )
    .only_dialect(Dialect::SMB311);
    let mut client = ClientConnection::new(client_config);

    let id = client.negotiate().expect("a fresh connection negotiates");
    let events = drive(&mut client, &mut server);
    let (status, _) = answer(&events, id);
    assert_eq!(status, NtStatus::SUCCESS);
    let info = client.negotiated().expect("negotiated");
    println!(
        "client: dialect {} signing with {}",
        info.dialect.dotted(),
        info.signing_algorithm.name()
    );

    let id = client
        .session_setup()
        .expect("negotiated, so SESSION_SETUP may start");
    let events = drive(&mut client, &mut server);
    assert_eq!(answer(&events, id).0, NtStatus::SUCCESS);
    assert!(client.session_signed(), "both sides require signing");

    let id = client
        .tree_connect(r"\\server\data")
        .expect("a session is up");
    let events = drive(&mut client, &mut server);
    match answer(&events, id) {
        (NtStatus::SUCCESS, ResponseBody::TreeConnect { tree_id, .. }) => {
            println!("client: connected to \\\\server\\data, TreeId {tree_id}");
        }
        other => panic!("TREE_CONNECT: {other:?}"),
    }
}
