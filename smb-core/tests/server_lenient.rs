//! Parse like the reference implementations (issue 9): the server accepts what Windows and
//! Samba accept (negotiate context DataLength longer than its contents, unknown contexts,
//! contexts in any order, reserved fields with any value, bytes after a fixed-size body) and
//! rejects exactly what MS-SMB2 3.3.5.x tells it to reject.

mod server_util;

use std::sync::Arc;

use server_util::{config, Client};
use smb_core::codec::Writer;
use smb_core::conn::server::ServerConfig;
use smb_core::header::{Command, Dialect, Header, NtStatus};
use smb_core::messages::echo::EchoRequest;
use smb_core::messages::ioctl::{
    fsctl, ioctl_flags, IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
};
use smb_core::messages::negotiate::{
    Guid, HashAlgorithm, NegotiateContext, NegotiateContextType, NegotiateRequest,
    NegotiateResponse, SigningAlgorithmId,
};
use smb_core::messages::FileId;

/// STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP.
const NO_PREAUTH_OVERLAP: NtStatus = NtStatus(0xC05D_0000);

fn server() -> Client {
    Client::new(config(true).0)
}

/// Sends one NEGOTIATE message as bytes and returns the status and, on success, the body.
fn negotiate_raw(c: &mut Client, msg: &[u8]) -> (NtStatus, Option<NegotiateResponse>) {
    let r = c.send(msg).expect("a NEGOTIATE response");
    assert_eq!(r.hdr.command, Command::NEGOTIATE);
    let body = (r.hdr.status == NtStatus::SUCCESS)
        .then(|| NegotiateResponse::read(&r.msg).expect("response parses"));
    (r.hdr.status, body)
}

fn negotiate_with(contexts: Vec<NegotiateContext>) -> (NtStatus, Option<NegotiateResponse>) {
    let mut c = server();
    let req = NegotiateRequest {
        security_mode: 1,
        dialects: Dialect::ALL.to_vec(),
        client_guid: Guid([1; 16]),
        contexts,
        ..Default::default()
    };
    let msg = c.build(Command::NEGOTIATE, &req);
    negotiate_raw(&mut c, &msg)
}

fn preauth() -> NegotiateContext {
    NegotiateContext::PreauthIntegrity {
        hash_algorithms: vec![HashAlgorithm::SHA512],
        salt: vec![9; 32],
    }
}

fn raw(context_type: NegotiateContextType, data: Vec<u8>) -> NegotiateContext {
    NegotiateContext::Other { context_type, data }
}

fn u16s(values: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.put_u16(*v);
    }
    out
}

/// The NEGOTIATE request nmap 7.93 sends (nselib/smb2.lua, `negotiate_v2`), byte for byte:
/// five dialects, an ENCRYPTION_CAPABILITIES context (AES-128-GCM, AES-128-CCM), then a
/// PREAUTH_INTEGRITY_CAPABILITIES context whose Data repeats the encryption context's 6 bytes
/// before its own 38, so its DataLength is 44 and its HashAlgorithmCount field reads 2.
fn nmap_negotiate() -> Vec<u8> {
    let mut msg = Vec::new();
    Header::request(Command::NEGOTIATE, 0, 0, 0).encode(&mut msg);
    msg.put_u16(36); // StructureSize
    msg.put_u16(5); // DialectCount
    msg.put_u16(1); // SecurityMode: signing enabled
    msg.put_u16(0); // Reserved
    msg.put_u32(0); // Capabilities
    msg.put_bytes(b"1234567890123456"); // ClientGuid
    msg.put_u32(112); // NegotiateContextOffset
    msg.put_u16(2); // NegotiateContextCount
    msg.put_u16(0); // Reserved2
    for d in [0x0202u16, 0x0210, 0x0300, 0x0302, 0x0311] {
        msg.put_u16(d);
    }
    msg.pad_to(8);
    assert_eq!(msg.len(), 112);
    let encryption = u16s(&[2, 0x0002, 0x0001]);
    msg.put_u16(2); // SMB2_ENCRYPTION_CAPABILITIES
    msg.put_u16(encryption.len() as u16);
    msg.put_u32(0);
    msg.put_bytes(&encryption);
    msg.pad_to(8);
    let mut preauth = encryption.clone();
    preauth.extend(u16s(&[1, 0x20, 0x0001]));
    preauth.extend([0u8; 16]);
    preauth.extend(1u128.to_le_bytes());
    assert_eq!(preauth.len(), 44);
    msg.put_u16(1); // SMB2_PREAUTH_INTEGRITY_CAPABILITIES
    msg.put_u16(preauth.len() as u16);
    msg.put_u32(0);
    msg.put_bytes(&preauth);
    msg
}

#[test]
fn nmaps_negotiate_with_a_long_preauth_context_is_accepted() {
    let mut c = server();
    let (status, body) = negotiate_raw(&mut c, &nmap_negotiate());
    assert_eq!(status, NtStatus::SUCCESS, "Samba and Windows accept it");
    let body = body.unwrap();
    assert_eq!(body.dialect_revision, Dialect::SMB311);
    assert_eq!(body.security_mode & 2, 2, "signing required is announced");
    assert!(matches!(
        body.context(NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES),
        Some(NegotiateContext::PreauthIntegrity { hash_algorithms, salt })
            if hash_algorithms == &[HashAlgorithm::SHA512] && salt.len() == 32
    ));
}

#[test]
fn every_context_may_be_longer_than_its_contents() {
    let mut long_preauth = u16s(&[1, 4, 1]);
    long_preauth.extend([7u8; 4 + 20]);
    let mut long_signing = u16s(&[1, 2]);
    long_signing.extend([0xEE; 9]);
    let (status, body) = negotiate_with(vec![
        raw(
            NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES,
            long_preauth,
        ),
        raw(
            NegotiateContextType::ENCRYPTION_CAPABILITIES,
            u16s(&[1, 2, 0xFFFF]),
        ),
        raw(NegotiateContextType::SIGNING_CAPABILITIES, long_signing),
    ]);
    assert_eq!(status, NtStatus::SUCCESS);
    assert!(matches!(
        body.unwrap().context(NegotiateContextType::SIGNING_CAPABILITIES),
        Some(NegotiateContext::Signing { algorithms }) if algorithms == &[SigningAlgorithmId::AES_GMAC]
    ));
}

#[test]
fn unknown_contexts_any_order_and_reserved_values_are_accepted() {
    // Signing first, an unknown type, Samba's POSIX context, a NETNAME, then preauth.
    let contexts = vec![
        NegotiateContext::Signing {
            algorithms: vec![SigningAlgorithmId::AES_CMAC],
        },
        raw(NegotiateContextType(0x7777), vec![0xAB; 13]),
        raw(NegotiateContextType(0x0100), vec![0x93; 16]),
        raw(
            NegotiateContextType::NETNAME_NEGOTIATE_CONTEXT_ID,
            smb_core::codec::utf16le("server"),
        ),
        raw(NegotiateContextType::TRANSPORT_CAPABILITIES, vec![]),
        preauth(),
    ];
    let mut c = server();
    let req = NegotiateRequest {
        security_mode: 1,
        dialects: vec![Dialect::SMB311],
        contexts,
        ..Default::default()
    };
    let mut msg = c.build(Command::NEGOTIATE, &req);
    // Reserved (body offset 6), Reserved2 (body offset 34) and each context's Reserved: any
    // value (MS-SMB2 2.2.3, 2.2.3.1 say "MUST be ignored on receipt" / are not checked).
    msg[64 + 6] = 0x5A;
    msg[64 + 34] = 0xA5;
    let first = u32::from_le_bytes(msg[64 + 28..64 + 32].try_into().unwrap()) as usize;
    msg[first + 4..first + 8].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    let (status, body) = negotiate_raw(&mut c, &msg);
    assert_eq!(status, NtStatus::SUCCESS);
    let body = body.unwrap();
    assert_eq!(body.dialect_revision, Dialect::SMB311);
    // Unknown contexts are not echoed.
    assert!(body.contexts.iter().all(|c| matches!(
        c.context_type(),
        NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES
            | NegotiateContextType::SIGNING_CAPABILITIES
    )));
}

#[test]
fn a_bad_context_list_is_ignored_when_311_is_not_selected() {
    let cfg = ServerConfig {
        dialects: vec![Dialect::SMB21, Dialect::SMB30, Dialect::SMB302],
        ..(*config(true).0).clone()
    };
    let mut c = Client::new(Arc::new(cfg));
    let req = NegotiateRequest {
        security_mode: 1,
        dialects: Dialect::ALL.to_vec(),
        contexts: vec![preauth()],
        ..Default::default()
    };
    let mut msg = c.build(Command::NEGOTIATE, &req);
    // NegotiateContextOffset far outside the message, and a count of 9.
    msg[64 + 28..64 + 32].copy_from_slice(&0x00FF_FFF8u32.to_le_bytes());
    msg[64 + 32] = 9;
    let (status, body) = negotiate_raw(&mut c, &msg);
    assert_eq!(status, NtStatus::SUCCESS);
    assert_eq!(body.unwrap().dialect_revision, Dialect::SMB302);
}

#[test]
fn what_3_3_5_4_rejects_is_rejected() {
    let two = |c: NegotiateContext| vec![preauth(), c.clone(), c];
    let bad = INVALID;
    let cases: Vec<(&str, Vec<NegotiateContext>, NtStatus)> = vec![
        ("no contexts", vec![], bad),
        (
            "no preauth",
            vec![NegotiateContext::Signing {
                algorithms: vec![SigningAlgorithmId::AES_CMAC],
            }],
            bad,
        ),
        ("two preauth", vec![preauth(), preauth()], bad),
        (
            "two encryption",
            two(NegotiateContext::Encryption {
                ciphers: vec![smb_core::messages::negotiate::CipherId::AES_128_GCM],
            }),
            bad,
        ),
        (
            "two signing",
            two(NegotiateContext::Signing {
                algorithms: vec![SigningAlgorithmId::AES_CMAC],
            }),
            bad,
        ),
        (
            "two compression",
            two(raw(
                NegotiateContextType::COMPRESSION_CAPABILITIES,
                u16s(&[1, 0, 0, 0, 1]),
            )),
            bad,
        ),
        (
            "two rdma transform",
            two(raw(
                NegotiateContextType::RDMA_TRANSFORM_CAPABILITIES,
                u16s(&[1, 0, 0, 0, 1]),
            )),
            bad,
        ),
        (
            "HashAlgorithmCount 0",
            vec![raw(
                NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES,
                u16s(&[0, 0]),
            )],
            bad,
        ),
        (
            "CipherCount 0",
            vec![
                preauth(),
                raw(NegotiateContextType::ENCRYPTION_CAPABILITIES, u16s(&[0])),
            ],
            bad,
        ),
        (
            "SigningAlgorithmCount 0",
            vec![
                preauth(),
                raw(NegotiateContextType::SIGNING_CAPABILITIES, u16s(&[0])),
            ],
            bad,
        ),
        (
            "CompressionAlgorithmCount 0",
            vec![
                preauth(),
                raw(
                    NegotiateContextType::COMPRESSION_CAPABILITIES,
                    u16s(&[0, 0, 0, 0]),
                ),
            ],
            bad,
        ),
        (
            "salt past DataLength",
            vec![raw(
                NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES,
                u16s(&[1, 32, 1]),
            )],
            bad,
        ),
        (
            "hash count past DataLength",
            vec![raw(
                NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES,
                u16s(&[3, 0, 1]),
            )],
            bad,
        ),
        (
            "no SHA-512",
            vec![NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HashAlgorithm(0x0002)],
                salt: vec![],
            }],
            NO_PREAUTH_OVERLAP,
        ),
    ];
    for (what, contexts, expected) in cases {
        let (status, _) = negotiate_with(contexts);
        assert_eq!(status, expected, "{what}");
    }
}

const INVALID: NtStatus = NtStatus::INVALID_PARAMETER;

#[test]
fn a_context_list_outside_the_message_or_misaligned_is_invalid() {
    for (what, patch) in [
        ("past the end", 0x00FF_FFF8u32),
        ("misaligned", 0x71),
        ("inside the dialects", 96),
    ] {
        let mut c = server();
        let req = NegotiateRequest {
            security_mode: 1,
            dialects: vec![Dialect::SMB311],
            contexts: vec![preauth()],
            ..Default::default()
        };
        let mut msg = c.build(Command::NEGOTIATE, &req);
        msg[64 + 28..64 + 32].copy_from_slice(&patch.to_le_bytes());
        assert_eq!(negotiate_raw(&mut c, &msg).0, INVALID, "{what}");
    }
    // A count larger than the list.
    let mut c = server();
    let req = NegotiateRequest {
        security_mode: 1,
        dialects: vec![Dialect::SMB311],
        contexts: vec![preauth()],
        ..Default::default()
    };
    let mut msg = c.build(Command::NEGOTIATE, &req);
    msg[64 + 32] = 2;
    assert_eq!(
        negotiate_raw(&mut c, &msg).0,
        INVALID,
        "count 2 for 1 context"
    );
}

#[test]
fn dialect_count_zero_and_no_common_dialect() {
    // MS-SMB2 3.3.5.4: DialectCount 0 → STATUS_INVALID_PARAMETER; no common dialect →
    // STATUS_NOT_SUPPORTED.
    let mut c = server();
    let req = NegotiateRequest {
        dialects: vec![Dialect::SMB202],
        ..Default::default()
    };
    let mut msg = c.build(Command::NEGOTIATE, &req);
    msg[64 + 2] = 0;
    assert_eq!(negotiate_raw(&mut c, &msg).0, INVALID);
    let mut c = server();
    let req = NegotiateRequest {
        dialects: vec![Dialect(0x0200), Dialect(0x0400)],
        ..Default::default()
    };
    let msg = c.build(Command::NEGOTIATE, &req);
    assert_eq!(negotiate_raw(&mut c, &msg).0, NtStatus::NOT_SUPPORTED);
}

#[test]
fn bytes_after_a_fixed_size_body_are_ignored() {
    let mut c = Client::connected(config(true).0, Dialect::SMB311);
    let h = c.header(Command::ECHO);
    let mut msg = smb_core::messages::build(&h, &EchoRequest);
    msg[64 + 2] = 0x77; // Reserved
    msg.extend_from_slice(&[0xCC; 40]);
    c.key.as_ref().unwrap().sign(&mut msg).unwrap();
    let r = c.send(&msg).expect("an ECHO response");
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
}

#[test]
fn validate_negotiate_info_with_a_longer_input_is_accepted() {
    let (cfg, _) = config(true);
    let mut c = Client::connected(cfg.clone(), Dialect::SMB30);
    let mut input = Vec::new();
    ValidateNegotiateInfoRequest {
        capabilities: 0x44,
        guid: Guid([0x42; 16]),
        security_mode: 1,
        dialects: vec![Dialect::SMB30],
    }
    .encode(&mut input);
    input.extend_from_slice(&[0; 6]);
    let r = c.call(
        Command::IOCTL,
        &IoctlRequest {
            ctl_code: fsctl::VALIDATE_NEGOTIATE_INFO,
            file_id: FileId::RELATED,
            input: input.clone(),
            max_input_response: 0,
            output: vec![],
            max_output_response: 24,
            flags: ioctl_flags::IS_FSCTL,
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    let out = IoctlResponse::read(&r.msg).unwrap().output;
    let v = ValidateNegotiateInfoResponse::read(&out).unwrap();
    assert_eq!(v.dialect, Dialect::SMB30);
    // Shorter than its DialectCount says: the request does not conform.
    assert!(ValidateNegotiateInfoRequest::read(&input[..25]).is_err());
}
