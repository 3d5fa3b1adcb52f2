//! The `parse_auth` fuzz target's body, shared with its stable-toolchain corpus replay
//! (`smb-core/tests/fuzz_server_replay.rs`). Feeds arbitrary bytes to the authentication
//! parsers a server or client meets in a SESSION_SETUP security buffer: SPNEGO (DER), the
//! three NTLMSSP messages, AV_PAIR lists, and both authentication state machines. Nothing
//! may panic; what parses must encode to bytes that parse and re-encode identically.

use std::sync::Arc;

use smb_core::auth::der::read_tlv;
use smb_core::auth::ntlm::{
    message_type, AuthenticateMessage, ChallengeMessage, NegotiateMessage, TargetInfo,
};
use smb_core::auth::spnego::{NegTokenInit, NegTokenResp, NegotiationToken};
use smb_core::auth::{ClientAuth, ClientStep, Credentials, ServerAuth, UserTable};

/// One input: nothing may panic, and what parses must re-encode stably.
pub fn run(data: &[u8]) {
    let _ = message_type(data);
    let _ = NegotiationToken::read(data);

    // Walk DER TLVs: each step consumes bytes, so this ends.
    let mut rest = data;
    while let Ok((_, after)) = read_tlv(rest, "fuzz") {
        assert!(after.len() < rest.len(), "read_tlv consumed nothing");
        rest = after;
    }

    // encode normalises some inputs (a NEGOTIATE whose flags announce a Version it does not
    // carry gets one of zeros: see smb-core/tests/fuzz_regressions.rs), so the invariant is
    // one step later: what we encode parses, and encoding that again gives the same bytes
    // and the same value.
    macro_rules! stable_encoding {
        ($($ty:ty),* $(,)?) => {$(
            if let Ok(value) = <$ty>::read(data) {
                let first = value.to_bytes();
                let back = <$ty>::read(&first).unwrap_or_else(|e| {
                    panic!("{}: re-encoded bytes do not parse: {e}", stringify!($ty))
                });
                let second = back.to_bytes();
                assert_eq!(first, second, "{} encoding is not stable", stringify!($ty));
                let again = <$ty>::read(&second).expect("stable bytes parse");
                assert_eq!(again, back, "{} value is not stable", stringify!($ty));
            }
        )*};
    }
    stable_encoding!(
        NegotiateMessage,
        ChallengeMessage,
        AuthenticateMessage,
        TargetInfo
    );

    if let Ok(init) = NegTokenInit::read(data) {
        let first = init.encode();
        let back = NegTokenInit::read(&first).expect("re-encoded NegTokenInit parses");
        assert_eq!(back.encode(), first, "NegTokenInit encoding is not stable");
    }
    if let Ok(resp) = NegTokenResp::read(data) {
        let first = resp.encode();
        let back = NegTokenResp::read(&first).expect("re-encoded NegTokenResp parses");
        assert_eq!(back.encode(), first, "NegTokenResp encoding is not stable");
    }

    // The server state machine, fed the input as its first and then its second token.
    let mut users = UserTable::new();
    users.add_password("alice", "Passw0rd!");
    let users = Arc::new(users);
    for (guest, anonymous) in [(false, false), (true, true)] {
        let mut server = ServerAuth::new(users.clone(), guest, anonymous);
        if server.step(data).is_ok() {
            let _ = server.step(data);
        }
    }

    // The client state machine: the input as the server's answer to its first token.
    let mut client = ClientAuth::new(Credentials::password("alice", "", "Passw0rd!"));
    if client.first_token().is_ok() {
        if let Ok(ClientStep::Continue(_)) = client.step(data) {
            let _ = client.step(data);
        }
    }
}
