//! Message codecs against bytes from independent implementations.
//!
//! The fixtures below were produced by smbprotocol 1.17.0's and impacket 0.13.1's own
//! structure classes (`SMB3NegotiateRequest`, `SMB2CreateRequest`, ...) and by capturing the
//! first message the real clients send on a loopback socket (impacket's SMB1 multi-protocol
//! NEGOTIATE, impacket's and smbprotocol's 3.1.1 NEGOTIATE). The generator scripts are
//! summarised beside each constant.

use proptest::prelude::*;
use smb_core::header::{Command, Dialect, Header, NtStatus};
use smb_core::messages::cancel::*;
use smb_core::messages::change_notify::*;
use smb_core::messages::close::*;
use smb_core::messages::create::*;
use smb_core::messages::echo::*;
use smb_core::messages::error::*;
use smb_core::messages::flush::*;
use smb_core::messages::info::*;
use smb_core::messages::ioctl::*;
use smb_core::messages::lock::*;
use smb_core::messages::logoff::*;
use smb_core::messages::negotiate::*;
use smb_core::messages::oplock_break::*;
use smb_core::messages::query_directory::*;
use smb_core::messages::query_info::*;
use smb_core::messages::read::*;
use smb_core::messages::session_setup::*;
use smb_core::messages::set_info::*;
use smb_core::messages::smb1_negotiate::*;
use smb_core::messages::tree_connect::*;
use smb_core::messages::tree_disconnect::*;
use smb_core::messages::write::*;
use smb_core::messages::{build, EncodeBody, FileId};
use smb_core::{DecodeError, InvalidReason};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("fixture hex")
}

/// Re-encodes `body` under the fixture's own header and compares the bytes.
fn reencode<B: EncodeBody>(fixture: &[u8], body: &B) -> Vec<u8> {
    let header = Header::parse(fixture).expect("fixture header");
    build(&header, body)
}

const SMBPROTOCOL_NEGOTIATE_REQUEST: &str = concat!(
    "fe534d424000000000000000000001000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000002400050002000000440000000123456789abcdef0123456789abcdef70000000",
    "040000000202100200030203110300000100260000000000010020000100000102030405060708090a0b0c0d0e0f1011",
    "12131415161718191a1b1c1d1e1f00000200060000000000020002000100000005000e00000000007300650072007600",
    "650072003100000008000800000000000300020001000000",
);

const SMBPROTOCOL_NEGOTIATE_RESPONSE: &str = concat!(
    "fe534d424000000000000000000001000100000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000004100030011030200fedcba9876543210fedcba98765432102f00000000008000",
    "000080000000800080c04858283dda01000000000000000080000c0090000000604806062b0601050502a03e00000000",
    "0100260000000000010020000100aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0000",
    "080004000000000001000200",
);

const SMBPROTOCOL_SESSION_SETUP_REQUEST: &str = concat!(
    "fe534d424000000000000000010001000000000000000000010000000000000000000000000000000000000000000000",
    "000000000000000000000000000000001900000201000000000000005800200000000000000000004e544c4d53535000",
    "01000000978208e200000000000000000000000000000000",
);

const SMBPROTOCOL_SESSION_SETUP_RESPONSE: &str = concat!(
    "fe534d424000000000000000010001000100000000000000010000000000000000000000000000000500000000000100",
    "000000000000000000000000000000000900000048000b00a181ce3081cba0030a0101",
);

const SMBPROTOCOL_TREE_CONNECT_REQUEST: &str = concat!(
    "fe534d424000000000000000030001000000000000000000030000000000000000000000000000000500000000000000",
    "0000000000000000000000000000000009000000480020005c005c003100320037002e0030002e0030002e0031005c00",
    "6400610074006100",
);

const SMBPROTOCOL_TREE_CONNECT_RESPONSE: &str = concat!(
    "fe534d424000000000000000030001000100000000000000030000000000000000000000010000000500000000000000",
    "00000000000000000000000000000000100001000008000000000000ff011f00",
);

const SMBPROTOCOL_CREATE_REQUEST: &str = concat!(
    "fe534d424000000000000000050001000000000000000000040000000000000000000000010000000500000000000000",
    "000000000000000000000000000000003900000002000000000000000000000000000000000000008900120080000000",
    "0700000001000000400000007800180090000000580000006400690072005c00660069006c0065002e00740078007400",
    "200000001000040000001800080000004d78416300000000b8fe3edec17bdd0120000000100004000000180008000000",
    "416c5369000000000000100000000000000000001000040000000000000000005146696400000000",
);

const SMBPROTOCOL_READ_REQUEST: &str = concat!(
    "fe534d424000000000000000080001000000000000000000050000000000000000000000010000000500000000000000",
    "000000000000000000000000000000003100500000000100000002000000000001000000000000000200000000000000",
    "0000000000000000000000000000000000",
);

const SMBPROTOCOL_READ_RESPONSE: &str = concat!(
    "fe534d424000000000000000080001000100000000000000050000000000000000000000010000000500000000000000",
    "000000000000000000000000000000001100500013000000000000000000000054686520717569636b2062726f776e20",
    "666f78",
);

const SMBPROTOCOL_WRITE_REQUEST: &str = concat!(
    "fe534d424000000000000000090001000000000000000000060000000000000000000000010000000500000000000000",
    "000000000000000000000000000000003100700017000000070000000000000001000000000000000200000000000000",
    "000000000000000000000000000000006a756d7073206f76657220746865206c617a7920646f67",
);

const SMBPROTOCOL_WRITE_RESPONSE: &str = concat!(
    "fe534d424000000000000000090001000100000000000000060000000000000000000000010000000500000000000000",
    "0000000000000000000000000000000011000000170000000000000000000000",
);

const IMPACKET_SMB1_NEGOTIATE: &str = concat!(
    "ff534d4272000000001801c8000000000000000000000000ffff000000000000002200024e54204c4d20302e31320002",
    "534d4220322e3030320002534d4220322e3f3f3f00",
);

const IMPACKET_NEGOTIATE_311: &str = concat!(
    "fe534d424000010000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000002400010001000000400000004f586e436269524b4e746b6c756f524568000000",
    "020000001103ffff0100260000000000010020000100544f634b414a49635843695367574a7a78596544746764554564",
    "696e70457169ffff020004000000000001000100",
);

const SMBPROTOCOL_NEGOTIATE_LIVE: &str = concat!(
    "fe534d424000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000002400050002000000450000001111111122223333444455555555555570000000",
    "040000000202100200030203110300000100260000000000010020000100ad888a33fd5a885e309a2053a00ffd1a5921",
    "539aaa1b092496338591a7951175000002000a0000000000040002000100040003000000000000000500120000000000",
    "3100320037002e0030002e0030002e00310000000000000008000800000000000300020001000000",
);

const IMPACKET_QUERY_DIRECTORY_1: &str = concat!(
    "fe534d4240000000000000000e0000000100000000000000090000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000009004800e60000005000000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da0105000000000000000500000000000000a00000000a00000061002e0074007800",
    "74000000000000005000000000000000804230e5c27bdd0100006dc64717da0100006dc64717da0100006dc64717da01",
    "88130000000000008813000000000000a00000000e0000006200690067002e00620069006e0000000000000000000000",
    "804230e5c27bdd0100006dc64717da0100006dc64717da0100006dc64717da0100100000000000000010000000000000",
    "1000000006000000730075006200",
);

const IMPACKET_QUERY_DIRECTORY_2: &str = concat!(
    "fe534d4240000000000000000e0000000100000000000000090000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000009004800f20000005000000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da0105000000000000000500000000000000a00000000a0000000000000061002e00",
    "74007800740000005800000000000000804230e5c27bdd0100006dc64717da0100006dc64717da0100006dc64717da01",
    "88130000000000008813000000000000a00000000e000000000000006200690067002e00620069006e00000000000000",
    "0000000000000000804230e5c27bdd0100006dc64717da0100006dc64717da0100006dc64717da010010000000000000",
    "0010000000000000100000000600000000000000730075006200",
);

const IMPACKET_QUERY_DIRECTORY_3: &str = concat!(
    "fe534d4240000000000000000e0000000100000000000000090000000000000000000000000000000000000000000000",
    "00000000000000000000000000000000090048003c0100006800000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da0105000000000000000500000000000000a00000000a0000000000000000000000",
    "0000000000000000000000000000000000000000000061002e007400780074007000000000000000804230e5c27bdd01",
    "00006dc64717da0100006dc64717da0100006dc64717da0188130000000000008813000000000000a00000000e000000",
    "0000000000000000000000000000000000000000000000000000000000006200690067002e00620069006e0000000000",
    "0000000000000000804230e5c27bdd0100006dc64717da0100006dc64717da0100006dc64717da010010000000000000",
    "001000000000000010000000060000000000000000000000000000000000000000000000000000000000000000007300",
    "75006200",
);

const IMPACKET_QUERY_DIRECTORY_12: &str = concat!(
    "fe534d4240000000000000000e0000000100000000000000090000000000000000000000000000000000000000000000",
    "00000000000000000000000000000000090048004a00000018000000000000000a00000061002e007400780074000000",
    "20000000000000000e0000006200690067002e00620069006e0000000000000000000000000000000600000073007500",
    "6200",
);

const IMPACKET_QUERY_DIRECTORY_37: &str = concat!(
    "fe534d4240000000000000000e0000000100000000000000090000000000000000000000000000000000000000000000",
    "00000000000000000000000000000000090048005e0100007800000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da0105000000000000000500000000000000a00000000a0000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000061002e00740078007400000000000000",
    "7800000000000000804230e5c27bdd0100006dc64717da0100006dc64717da0100006dc64717da018813000000000000",
    "8813000000000000a00000000e0000000000000000000000000000000000000000000000000000000000000000000000",
    "00000000000000006200690067002e00620069006e0000000000000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da010010000000000000001000000000000010000000060000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000730075006200",
);

const IMPACKET_QUERY_DIRECTORY_38: &str = concat!(
    "fe534d4240000000000000000e0000000100000000000000090000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000009004800160100006000000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da0105000000000000000500000000000000a00000000a0000000000000000000000",
    "000000000000000061002e007400780074000000000000006000000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da0188130000000000008813000000000000a00000000e0000000000000000000000",
    "00000000000000006200690067002e00620069006e0000000000000000000000804230e5c27bdd0100006dc64717da01",
    "00006dc64717da0100006dc64717da010010000000000000001000000000000010000000060000000000000000000000",
    "0000000000000000730075006200",
);

const SMBPROTOCOL_IOCTL_VALIDATE_NEGOTIATE: &str = concat!(
    "fe534d4240000000000000000b00010000000000000000000a0000000000000000000000010000000500000000000000",
    "000000000000000000000000000000003900000004021400ffffffffffffffffffffffffffffffff7800000020000000",
    "000000007800000000000000200000000100000000000000440000001111111122223333444455555555555502000400",
    "0202100200030203",
);

const SMBPROTOCOL_QUERY_INFO_REQUEST: &str = concat!(
    "fe534d4240000000000000001000010000000000000000000b0000000000000000000000010000000500000000000000",
    "000000000000000000000000000000002900010518000000000000000000000000000000000000000100000000000000",
    "0200000000000000",
);

const SMBPROTOCOL_SET_INFO_RENAME: &str = concat!(
    "fe534d4240000000000000001100010000000000000000000c0000000000000000000000010000000500000000000000",
    "000000000000000000000000000000002100010a34000000600000000000000001000000000000000200000000000000",
    "01000000000000000000000000000000200000006400690072005c006e006500770020006e0061006d0065002e007400",
    "78007400",
);

// smbprotocol: the NEGOTIATE request `Connection._send_smb2_negotiate` builds (all five
// dialects, PREAUTH + ENCRYPTION + NETNAME + SIGNING contexts), salt 00..1f.
#[test]
fn smbprotocol_negotiate_request() {
    let msg = unhex(SMBPROTOCOL_NEGOTIATE_REQUEST);
    let n = NegotiateRequest::read(&msg).unwrap();
    assert_eq!(n.dialects, Dialect::ALL.to_vec());
    assert_eq!(n.security_mode, 2);
    assert_eq!(n.capabilities, 0x44);
    // smbprotocol writes `uuid.bytes` (big-endian fields) as the GUID: 16 opaque bytes.
    assert_eq!(n.client_guid.0, msg[76..92]);
    assert_eq!(n.contexts.len(), 4);
    assert_eq!(
        n.contexts[0],
        NegotiateContext::PreauthIntegrity {
            hash_algorithms: vec![HashAlgorithm::SHA512],
            salt: (0u8..32).collect()
        }
    );
    assert_eq!(
        n.contexts[1],
        NegotiateContext::Encryption {
            ciphers: vec![CipherId::AES_128_GCM, CipherId::AES_128_CCM]
        }
    );
    assert_eq!(
        n.contexts[2],
        NegotiateContext::Other {
            context_type: NegotiateContextType::NETNAME_NEGOTIATE_CONTEXT_ID,
            data: smb_core::codec::utf16le("server1"),
        }
    );
    assert_eq!(
        n.contexts[3],
        NegotiateContext::Signing {
            algorithms: vec![
                SigningAlgorithmId::AES_GMAC,
                SigningAlgorithmId::AES_CMAC,
                SigningAlgorithmId::HMAC_SHA256
            ]
        }
    );
    assert_eq!(reencode(&msg, &n), msg);
}

// The NEGOTIATE request smbprotocol's `Connection.connect()` really sent to a loopback socket
// (random salt, ciphers AES-128-GCM/CCM and AES-256-GCM/CCM, netname "127.0.0.1").
#[test]
fn smbprotocol_live_negotiate_request() {
    let msg = unhex(SMBPROTOCOL_NEGOTIATE_LIVE);
    let n = NegotiateRequest::read(&msg).unwrap();
    assert_eq!(n.dialects.last(), Some(&Dialect::SMB311));
    match n.context(NegotiateContextType::ENCRYPTION_CAPABILITIES) {
        Some(NegotiateContext::Encryption { ciphers }) => assert_eq!(ciphers.len(), 4),
        other => panic!("no encryption context: {other:?}"),
    }
    match n.context(NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES) {
        Some(NegotiateContext::PreauthIntegrity { salt, .. }) => assert_eq!(salt.len(), 32),
        other => panic!("no preauth context: {other:?}"),
    }
    assert!(n
        .context(NegotiateContextType::SIGNING_CAPABILITIES)
        .is_some());
    assert_eq!(reencode(&msg, &n), msg);
}

// impacket `SMBConnection(..., preferredDialect=SMB2_DIALECT_311)`: one dialect, and 0xFFFF
// filler in the alignment padding (which the spec leaves unspecified), so only the parsed
// values are compared.
#[test]
fn impacket_live_negotiate_request() {
    let msg = unhex(IMPACKET_NEGOTIATE_311);
    let n = NegotiateRequest::read(&msg).unwrap();
    assert_eq!(n.dialects, vec![Dialect::SMB311]);
    assert_eq!(n.security_mode, 1);
    assert_eq!(n.contexts.len(), 2);
    assert!(matches!(
        &n.contexts[0],
        NegotiateContext::PreauthIntegrity { hash_algorithms, salt }
            if hash_algorithms == &[HashAlgorithm::SHA512] && salt.len() == 32
    ));
    assert_eq!(
        n.contexts[1],
        NegotiateContext::Encryption {
            ciphers: vec![CipherId::AES_128_CCM]
        }
    );
    let again = NegotiateRequest::read(&reencode(&msg, &n)).unwrap();
    assert_eq!(again, n);
}

// impacket `SMBConnection(...)` without a preferred dialect opens with an SMB1 NEGOTIATE.
#[test]
fn impacket_smb1_multi_protocol_negotiate() {
    let msg = unhex(IMPACKET_SMB1_NEGOTIATE);
    assert!(is_smb1(&msg));
    assert_eq!(
        Header::parse(&msg).unwrap_err().invalid_reason(),
        Some(InvalidReason::ProtocolId(*b"\xffSMB"))
    );
    let n = Smb1Negotiate::read(&msg).unwrap();
    assert_eq!(n.dialects, ["NT LM 0.12", "SMB 2.002", "SMB 2.???"]);
    assert_eq!(n.smb2_reply_dialect(true), Some(Dialect::WILDCARD));
    assert_eq!(n.smb2_reply_dialect(false), Some(Dialect::SMB202));
}

// smbprotocol `SMB2NegotiateResponse` for 3.1.1 with a 12-byte security blob and PREAUTH +
// SIGNING(GMAC) contexts; SystemTime 2024-01-02T03:04:05Z.
#[test]
fn smbprotocol_negotiate_response() {
    let msg = unhex(SMBPROTOCOL_NEGOTIATE_RESPONSE);
    let r = NegotiateResponse::read(&msg).unwrap();
    assert_eq!(r.dialect_revision, Dialect::SMB311);
    assert_eq!(r.security_mode, 3);
    assert_eq!(r.capabilities, 0x2f);
    assert_eq!(
        (r.max_transact_size, r.max_read_size, r.max_write_size),
        (8 << 20, 8 << 20, 8 << 20)
    );
    // FILETIME: 100 ns ticks since 1601; 11644473600 s separate 1601 from 1970.
    assert_eq!(
        r.system_time,
        (1_704_164_645u64 + 11_644_473_600) * 10_000_000
    );
    assert_eq!(r.security_buffer.len(), 12);
    assert_eq!(
        r.contexts[1],
        NegotiateContext::Signing {
            algorithms: vec![SigningAlgorithmId::AES_GMAC]
        }
    );
    assert_eq!(reencode(&msg, &r), msg);
}

#[test]
fn smbprotocol_session_setup() {
    let msg = unhex(SMBPROTOCOL_SESSION_SETUP_REQUEST);
    let s = SessionSetupRequest::read(&msg).unwrap();
    assert_eq!(s.security_mode, 2);
    assert_eq!(s.capabilities, 1);
    assert!(s.security_buffer.starts_with(b"NTLMSSP\0\x01\0\0\0"));
    assert_eq!(reencode(&msg, &s), msg);

    let msg = unhex(SMBPROTOCOL_SESSION_SETUP_RESPONSE);
    let s = SessionSetupResponse::read(&msg).unwrap();
    assert!(!s.is_guest());
    assert_eq!(s.security_buffer, unhex("a181ce3081cba0030a0101"));
    assert_eq!(
        Header::parse(&msg).unwrap().session_id,
        0x0001_0000_0000_0005
    );
    assert_eq!(reencode(&msg, &s), msg);
}

#[test]
fn smbprotocol_tree_connect() {
    let msg = unhex(SMBPROTOCOL_TREE_CONNECT_REQUEST);
    let t = TreeConnectRequest::read(&msg).unwrap();
    assert_eq!(t.path, r"\\127.0.0.1\data");
    assert_eq!(t.share_name(), "data");
    assert_eq!(reencode(&msg, &t), msg);

    let msg = unhex(SMBPROTOCOL_TREE_CONNECT_RESPONSE);
    let t = TreeConnectResponse::read(&msg).unwrap();
    assert_eq!(t.share_type, ShareType::DISK);
    assert_eq!(t.share_flags, share_flags::ACCESS_BASED_DIRECTORY_ENUM);
    assert_eq!(t.maximal_access, access::FILE_ALL_ACCESS);
    assert_eq!(reencode(&msg, &t), msg);
}

// smbprotocol `SMB2CreateRequest` for "dir\file.txt" with MxAc (with its timestamp), AlSi
// (1 MiB) and QFid contexts, packed by `SMB2CreateContextRequest.pack_multiple`.
#[test]
fn smbprotocol_create_request() {
    let msg = unhex(SMBPROTOCOL_CREATE_REQUEST);
    let c = CreateRequest::read(&msg).unwrap();
    assert_eq!(c.name, r"dir\file.txt");
    assert_eq!(c.impersonation_level, ImpersonationLevel::IMPERSONATION);
    assert_eq!(c.desired_access, 0x0012_0089);
    assert_eq!(c.file_attributes, file_attributes::NORMAL);
    assert_eq!(
        c.share_access,
        share_access::READ | share_access::WRITE | share_access::DELETE
    );
    assert_eq!(c.create_disposition, CreateDisposition::OPEN);
    assert_eq!(c.create_options, create_options::NON_DIRECTORY_FILE);
    let names: Vec<&[u8]> = c.contexts.iter().map(|x| x.name.as_slice()).collect();
    assert_eq!(
        names,
        [
            context_names::QUERY_MAXIMAL_ACCESS,
            context_names::ALLOCATION_SIZE,
            context_names::QUERY_ON_DISK_ID
        ]
    );
    assert_eq!(c.contexts[0].data.len(), 8);
    assert_eq!(
        find_context(&c.contexts, b"AlSi").unwrap().data,
        (1u64 << 20).to_le_bytes()
    );
    assert!(c.contexts[2].data.is_empty());
    // smbprotocol pads the last context to 8 bytes and counts that in CreateContextsLength;
    // we (like Samba's smb2_create_blob_push) do not: both are valid, so compare values.
    let again = reencode(&msg, &c);
    assert_eq!(again[..116], msg[..116]);
    assert_eq!(again[120..], msg[120..again.len()]);
    assert_eq!(msg.len() - again.len(), 4);
    assert_eq!(CreateRequest::read(&again).unwrap(), c);
}

#[test]
fn smbprotocol_read_write() {
    let id = FileId {
        persistent: 1,
        volatile: 2,
    };
    let msg = unhex(SMBPROTOCOL_READ_REQUEST);
    let r = ReadRequest::read(&msg).unwrap();
    assert_eq!(
        (r.padding, r.length, r.offset, r.file_id),
        (0x50, 65536, 131072, id)
    );
    assert_eq!(reencode(&msg, &r), msg);

    let msg = unhex(SMBPROTOCOL_READ_RESPONSE);
    let r = ReadResponse::read(&msg).unwrap();
    assert_eq!(r.data, b"The quick brown fox");
    assert_eq!(reencode(&msg, &r), msg);

    let msg = unhex(SMBPROTOCOL_WRITE_REQUEST);
    let w = WriteRequest::read(&msg).unwrap();
    assert_eq!((w.offset, w.file_id), (7, id));
    assert_eq!(w.data, b"jumps over the lazy dog");
    assert_eq!(reencode(&msg, &w), msg);

    let msg = unhex(SMBPROTOCOL_WRITE_RESPONSE);
    let w = WriteResponse::read(&msg).unwrap();
    assert_eq!(w.count, 23);
    assert_eq!(reencode(&msg, &w), msg);
}

#[test]
fn close_round_trip_in_a_chain_with_padding() {
    // A CLOSE response followed by chain padding still decodes, and so does one with a longer
    // tail (ignored, as Samba ignores the dynamic part of a fixed-size body).
    let h = Header::request(Command::CLOSE, 9, 5, 1).response(smb_core::header::NtStatus::SUCCESS);
    let body = CloseResponse {
        flags: close_flags::POSTQUERY_ATTRIB,
        end_of_file: 5,
        ..Default::default()
    };
    let mut msg = build(&h, &body);
    msg.extend_from_slice(&[0; 4]);
    assert_eq!(CloseResponse::read(&msg).unwrap(), body);
    msg.extend_from_slice(&[0xAB; 8]);
    assert_eq!(CloseResponse::read(&msg).unwrap(), body);
    assert!(CloseResponse::read(&msg[..64 + 59]).is_err());
    // Another StructureSize is refused, and says which it found.
    msg[64] = 61;
    assert_eq!(
        CloseResponse::read(&msg).unwrap_err(),
        DecodeError::Invalid {
            what: "CLOSE response",
            reason: InvalidReason::StructureSize {
                found: 61,
                expected: 60
            }
        }
    );
}

// impacket's server code (`smbserver.findFirst2`, what its smb2QueryDirectory answers with)
// for a directory holding a.txt (5 bytes), big.bin (5000 bytes) and sub/, mtime 1700000000,
// one fixture per information class, wrapped by smbprotocol's SMB2QueryDirectoryResponse.
#[test]
fn impacket_query_directory_entries() {
    let mtime = (1_700_000_000u64 + 11_644_473_600) * 10_000_000;
    for (class, hex) in [
        (FileInfoClass::DIRECTORY, IMPACKET_QUERY_DIRECTORY_1),
        (FileInfoClass::FULL_DIRECTORY, IMPACKET_QUERY_DIRECTORY_2),
        (FileInfoClass::BOTH_DIRECTORY, IMPACKET_QUERY_DIRECTORY_3),
        (FileInfoClass::NAMES, IMPACKET_QUERY_DIRECTORY_12),
        (
            FileInfoClass::ID_BOTH_DIRECTORY,
            IMPACKET_QUERY_DIRECTORY_37,
        ),
        (
            FileInfoClass::ID_FULL_DIRECTORY,
            IMPACKET_QUERY_DIRECTORY_38,
        ),
    ] {
        let msg = unhex(hex);
        let resp = QueryDirectoryResponse::read(&msg).unwrap();
        let entries = decode_directory_entries(class, &resp.buffer).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.file_name.as_str()).collect();
        assert_eq!(names, ["a.txt", "big.bin", "sub"], "{class}");
        if class != FileInfoClass::NAMES {
            let sizes: Vec<u64> = entries.iter().map(|e| e.end_of_file).collect();
            assert_eq!(sizes[..2], [5, 5000], "{class}");
            assert_eq!(entries[0].last_write_time, mtime, "{class}");
            assert_eq!(
                entries[2].file_attributes & file_attributes::DIRECTORY,
                file_attributes::DIRECTORY
            );
            assert_eq!(
                entries[0].file_attributes,
                file_attributes::NORMAL | file_attributes::ARCHIVE
            );
        }
        // Our encoder produces the same entry bytes (same 8-byte alignment, last entry unpadded).
        let (ours, n) = encode_directory_entries(class, &entries, usize::MAX).unwrap();
        assert_eq!(n, 3);
        assert_eq!(ours, resp.buffer, "{class}");
        assert_eq!(
            reencode(&msg, &QueryDirectoryResponse { buffer: ours }),
            msg
        );
    }
}

// smbprotocol's TreeConnect._verify_dialect_negotiate IOCTL for a 3.0.2 session.
#[test]
fn smbprotocol_validate_negotiate_ioctl() {
    let msg = unhex(SMBPROTOCOL_IOCTL_VALIDATE_NEGOTIATE);
    let io = IoctlRequest::read(&msg).unwrap();
    assert_eq!(io.ctl_code, fsctl::VALIDATE_NEGOTIATE_INFO);
    assert_eq!(io.file_id, FileId::RELATED);
    assert!(io.is_fsctl());
    // smbprotocol asks for len(request) = 32 bytes of output (the answer is 24).
    assert_eq!(io.max_output_response, 32);
    let v = ValidateNegotiateInfoRequest::read(&io.input).unwrap();
    assert_eq!(v.capabilities, 0x44);
    assert_eq!(v.security_mode, 2);
    assert_eq!(v.dialects, Dialect::ALL[..4].to_vec());
    assert_eq!(reencode(&msg, &io), msg);
}

#[test]
fn smbprotocol_query_and_set_info() {
    // smbprotocol sends QUERY_INFO without the one Buffer byte StructureSize 41 counts; it
    // still decodes (our encoder adds the byte, as Samba expects).
    let msg = unhex(SMBPROTOCOL_QUERY_INFO_REQUEST);
    assert_eq!(msg.len(), 64 + 40);
    let q = QueryInfoRequest::read(&msg).unwrap();
    assert_eq!(q.info_type, InfoType::FILE);
    assert_eq!(q.file_info_class, FileInfoClass::STANDARD.0);
    assert_eq!(q.output_buffer_length, 24);
    assert_eq!(
        q.file_id,
        FileId {
            persistent: 1,
            volatile: 2
        }
    );
    let ours = reencode(&msg, &q);
    assert_eq!(ours[..msg.len()], msg[..]);
    assert_eq!(ours.len(), msg.len() + 1);

    let msg = unhex(SMBPROTOCOL_SET_INFO_RENAME);
    let s = SetInfoRequest::read(&msg).unwrap();
    assert_eq!(s.file_info_class, FileInfoClass::RENAME.0);
    let rename = FileRenameInformation::read(&s.buffer).unwrap();
    assert!(rename.replace_if_exists);
    assert_eq!(rename.root_directory, 0);
    assert_eq!(rename.file_name, r"dir\new name.txt");
    let mut again = Vec::new();
    rename.encode(&mut again);
    assert_eq!(again, s.buffer);
    assert_eq!(reencode(&msg, &s), msg);
}

// ---------------------------------------------------------------------------------------
// Malformed input: every decoder on arbitrary bytes returns, never panics.

/// Runs every decoder over `msg` (a whole message) and over its body as an info buffer.
fn decode_everything(msg: &[u8]) {
    let _ = ErrorResponse::read(msg).map(|e| e.contexts());
    let _ = NegotiateRequest::read(msg);
    let _ = NegotiateResponse::read(msg);
    let _ = Smb1Negotiate::read(msg);
    let _ = SessionSetupRequest::read(msg);
    let _ = SessionSetupResponse::read(msg);
    let _ = LogoffRequest::read(msg);
    let _ = LogoffResponse::read(msg);
    let _ = TreeConnectRequest::read(msg);
    let _ = TreeConnectResponse::read(msg);
    let _ = TreeDisconnectRequest::read(msg);
    let _ = TreeDisconnectResponse::read(msg);
    let _ = CreateRequest::read(msg);
    let _ = CreateResponse::read(msg);
    let _ = CloseRequest::read(msg);
    let _ = CloseResponse::read(msg);
    let _ = FlushRequest::read(msg);
    let _ = FlushResponse::read(msg);
    let _ = ReadRequest::read(msg);
    let _ = ReadResponse::read(msg);
    let _ = WriteRequest::read(msg);
    let _ = WriteResponse::read(msg);
    let _ = OplockBreak::read(msg);
    let _ = LockRequest::read(msg);
    let _ = LockResponse::read(msg);
    let _ = EchoRequest::read(msg);
    let _ = EchoResponse::read(msg);
    let _ = CancelRequest::read(msg);
    let _ = QueryDirectoryRequest::read(msg);
    let _ = QueryDirectoryResponse::read(msg);
    let _ = ChangeNotifyRequest::read(msg);
    let _ = ChangeNotifyResponse::read(msg);
    let _ = QueryInfoRequest::read(msg);
    let _ = QueryInfoResponse::read(msg);
    let _ = SetInfoRequest::read(msg);
    let _ = SetInfoResponse::read(msg);
    let _ = IoctlRequest::read(msg);
    let _ = IoctlResponse::read(msg);
    let body = msg.get(64..).unwrap_or(&[]);
    decode_info(body);
}

fn decode_info(buf: &[u8]) {
    for class in [1u8, 2, 3, 12, 37, 38, 4] {
        let _ = decode_directory_entries(FileInfoClass(class), buf);
    }
    let _ = FileAllInformation::read(buf);
    let _ = FileBasicInformation::read(buf);
    let _ = FileStandardInformation::read(buf);
    let _ = FileNetworkOpenInformation::read(buf);
    let _ = FileNameInformation::read(buf);
    let _ = FileRenameInformation::read(buf);
    let _ = FileStreamInformation::read_list(buf);
    let _ = FileFsVolumeInformation::read(buf);
    let _ = FileFsAttributeInformation::read(buf);
    let _ = FileFsSectorSizeInformation::read(buf);
    let _ = SecurityDescriptor::read(buf);
    let _ = ValidateNegotiateInfoRequest::read(buf);
    let _ = ValidateNegotiateInfoResponse::read(buf);
}

/// Every StructureSize some body has, so random bodies get past the first check.
const STRUCTURE_SIZES: [u16; 21] = [
    2, 4, 9, 16, 17, 24, 25, 32, 33, 36, 41, 48, 49, 57, 60, 65, 89, 0, 1, 0xFFFF, 64,
];

/// Valid messages of every kind, to mutate.
fn corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        SMBPROTOCOL_NEGOTIATE_REQUEST,
        SMBPROTOCOL_NEGOTIATE_RESPONSE,
        SMBPROTOCOL_NEGOTIATE_LIVE,
        IMPACKET_NEGOTIATE_311,
        IMPACKET_SMB1_NEGOTIATE,
        SMBPROTOCOL_SESSION_SETUP_REQUEST,
        SMBPROTOCOL_SESSION_SETUP_RESPONSE,
        SMBPROTOCOL_TREE_CONNECT_REQUEST,
        SMBPROTOCOL_CREATE_REQUEST,
        SMBPROTOCOL_READ_RESPONSE,
        SMBPROTOCOL_WRITE_REQUEST,
        SMBPROTOCOL_IOCTL_VALIDATE_NEGOTIATE,
        SMBPROTOCOL_SET_INFO_RENAME,
        IMPACKET_QUERY_DIRECTORY_37,
        IMPACKET_QUERY_DIRECTORY_3,
    ]
    .iter()
    .map(|h| unhex(h))
    .collect();
    let h = Header::request(Command::CREATE, 1, 1, 1).response(NtStatus::SUCCESS);
    v.push(build(
        &h,
        &CreateResponse {
            contexts: vec![
                CreateContext::new(b"MxAc", vec![0; 8]),
                CreateContext::new(b"QFid", vec![1; 32]),
            ],
            ..Default::default()
        },
    ));
    let h = Header::request(Command::LOCK, 1, 1, 1);
    v.push(build(
        &h,
        &LockRequest {
            locks: vec![LockElement::default(); 2],
            ..Default::default()
        },
    ));
    let h = Header::request(Command::QUERY_INFO, 1, 1, 1).response(NtStatus::SUCCESS);
    let mut sd = Vec::new();
    SecurityDescriptor::everyone_full_access(Sid::local_system(), Sid::builtin_administrators(), 7)
        .encode(&mut sd);
    v.push(build(&h, &QueryInfoResponse { buffer: sd }));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bodies_after_a_valid_header(
        command in 0u16..20,
        response in any::<bool>(),
        size_pick in 0usize..STRUCTURE_SIZES.len(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut h = Header::request(Command(command), 1, 1, 1);
        if response {
            h = h.response(NtStatus::SUCCESS);
        }
        let mut msg = Vec::new();
        h.encode(&mut msg);
        msg.extend_from_slice(&STRUCTURE_SIZES[size_pick].to_le_bytes());
        msg.extend_from_slice(&body);
        decode_everything(&msg);
        decode_everything(&msg[..msg.len().min(64 + body.len() / 2)]);
    }

    #[test]
    fn mutated_valid_messages(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        wide in any::<(prop::sample::Index, u32)>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let corpus = corpus();
        let mut msg = pick.get(&corpus).clone();
        for (at, byte) in edits {
            let i = at.index(msg.len());
            msg[i] = byte;
        }
        // Also plant a whole 32-bit value (lengths and offsets) somewhere.
        let i = wide.0.index(msg.len() - 4);
        msg[i..i + 4].copy_from_slice(&wide.1.to_le_bytes());
        decode_everything(&msg);
        decode_everything(&msg[..cut.index(msg.len() + 1)]);
    }
}

#[test]
fn corpus_messages_decode_before_mutation() {
    // The mutation test starts from messages that are valid, so it explores deep paths.
    let c = corpus();
    assert!(NegotiateRequest::read(&c[0]).is_ok());
    assert!(CreateResponse::read(&c[15]).is_ok());
    assert!(LockRequest::read(&c[16]).is_ok());
    let q = QueryInfoResponse::read(&c[17]).unwrap();
    assert!(SecurityDescriptor::read(&q.buffer).is_ok());
}
