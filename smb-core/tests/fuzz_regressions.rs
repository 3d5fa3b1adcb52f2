//! Inputs found by the `parse_message` fuzz target (`fuzz/`), kept as tests so that what was
//! found once stays fixed. Each test names the artifact it came from and the invariant the
//! fuzz target checks for it.

use smb_core::auth::ntlm::NegotiateMessage;
use smb_core::compound::{build_chain, split_chain};
use smb_core::header::Header;
use smb_core::messages::info::{sd_control, SecurityDescriptor};

/// The first message of the minimized artifact (84 bytes: a 64-byte header, then a body
/// whose first 20 bytes read as a security descriptor with Control = 0).
/// Source: crash-441bf523fe3ac15bb883f2f39c16a6cdbc9eedbc, minimized.
const SD_WITHOUT_SELF_RELATIVE: &str = concat!(
    "fe534d4240000100000000000000000000000002000000000000000000000000",
    "0000080000010001000000000000000300020001000000000000000003000200",
    // Body: Revision 1, Sbz1 0, Control 0x0000, no owner/group/DACL, a stray SACL offset.
    "0100000000000000000000000800010000000000",
);

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test hex")
}

/// SecurityDescriptor::read accepted a descriptor whose Control lacks SE_SELF_RELATIVE and
/// encode then set that bit, so read -> encode -> read changed the value. A wire descriptor
/// is self-relative (MS-DTYP 2.4.6, MS-SMB2 2.2.39: SET_INFO carries it "in self-relative
/// format"), so the invariant kept is: whatever read accepts encodes to a self-relative
/// descriptor whose encoding is stable.
#[test]
fn security_descriptor_without_self_relative_flag_encodes_stably() {
    let message = unhex(SD_WITHOUT_SELF_RELATIVE);
    assert_eq!(message.len(), 84);
    let body = &message[64..];
    assert_eq!(
        u16::from_le_bytes([body[2], body[3]]) & sd_control::SELF_RELATIVE,
        0
    );

    let Ok(sd) = SecurityDescriptor::read(body) else {
        return; // Rejecting a non-self-relative descriptor is also acceptable.
    };
    let mut first = Vec::new();
    sd.encode(&mut first);
    let back = SecurityDescriptor::read(&first).expect("re-encoded descriptor parses");
    assert_ne!(
        back.control & sd_control::SELF_RELATIVE,
        0,
        "encoded descriptor is self-relative"
    );
    assert_eq!(
        (back.owner.clone(), back.group.clone(), back.dacl.clone()),
        (sd.owner, sd.group, sd.dacl)
    );
    let mut second = Vec::new();
    back.encode(&mut second);
    assert_eq!(first, second, "encoding is stable");
}

/// The same artifact through the chain and header checks the target runs on every input:
/// one message, a header that re-encodes to its own bytes, a chain that rebuilds exactly.
#[test]
fn sd_artifact_passes_chain_and_header_invariants() {
    let message = unhex(SD_WITHOUT_SELF_RELATIVE);
    let ranges = split_chain(&message).expect("a chain of one");
    assert_eq!(ranges, vec![0..84]);
    let header = Header::parse(&message).expect("header");
    let mut again = Vec::new();
    header.encode(&mut again);
    assert_eq!(again, message[..64]);
    assert_eq!(build_chain(std::slice::from_ref(&message)), message);
}

/// NTLM NEGOTIATE_MESSAGE whose flags (0xA2088207) include NTLMSSP_NEGOTIATE_VERSION but
/// which stops after the 32-byte fixed part, without the Version field.
/// Source: parse_auth crash-7d616e4ba4b5ca37b9c17e56034f198f3b93c553.
const NTLM_NEGOTIATE_VERSION_FLAG_WITHOUT_VERSION: &str =
    "4e544c4d5353500001000000078208a200000000000000000000000000000000";

/// read accepted it with `version: None`; encode wrote the Version field the flag
/// announces (zeros), so the value changed in a round trip. The Version is informational
/// (MS-NLMP 2.2.2.10: for debugging only, it does not affect message processing), so the
/// invariant kept is: what
/// read accepts encodes to bytes that parse, and re-encoding them is stable.
#[test]
fn ntlm_negotiate_with_version_flag_but_no_version_encodes_stably() {
    let token = unhex(NTLM_NEGOTIATE_VERSION_FLAG_WITHOUT_VERSION);
    assert_eq!(token.len(), 32);
    let Ok(msg) = NegotiateMessage::read(&token) else {
        return; // Rejecting the truncated message is also acceptable.
    };
    assert_eq!(msg.flags, 0xA208_8207);
    let first = msg.to_bytes();
    let back = NegotiateMessage::read(&first).expect("re-encoded NEGOTIATE parses");
    assert_eq!(back.flags, msg.flags);
    assert_eq!(
        (&back.domain, &back.workstation),
        (&msg.domain, &msg.workstation)
    );
    let second = back.to_bytes();
    assert_eq!(first, second, "encoding is stable");
    assert_eq!(NegotiateMessage::read(&second).expect("parses"), back);
}
