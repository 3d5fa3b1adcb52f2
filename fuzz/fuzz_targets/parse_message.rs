//! Feeds arbitrary bytes to everything that parses an incoming SMB2 frame: the Direct-TCP
//! prefix, the compound chain, the header and the body of each message in it, and the
//! signature check. Nothing may panic, and what parses must satisfy the invariants the rest
//! of the engine relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smb_core::compound::{build_chain, split_chain};
use smb_core::framing::{frame_len, DEFAULT_MAX_FRAME, PREFIX_LEN};
use smb_core::header::{Header, HEADER_LEN};
use smb_core::messages::info::{
    decode_directory_entries, FileAllInformation, FileAttributeTagInformation,
    FileBasicInformation, FileDispositionInformation, FileFsAttributeInformation,
    FileFsDeviceInformation, FileFsFullSizeInformation, FileFsSectorSizeInformation,
    FileFsSizeInformation, FileFsVolumeInformation, FileInfoClass, FileNameInformation,
    FileNetworkOpenInformation, FileRenameInformation, FileStandardInformation,
    FileStreamInformation, SecurityDescriptor,
};
use smb_core::messages::{
    cancel::CancelRequest,
    change_notify::{ChangeNotifyRequest, ChangeNotifyResponse},
    close::{CloseRequest, CloseResponse},
    create::{CreateRequest, CreateResponse},
    echo::{EchoRequest, EchoResponse},
    error::ErrorResponse,
    flush::{FlushRequest, FlushResponse},
    ioctl::{
        IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest, ValidateNegotiateInfoResponse,
    },
    lock::{LockRequest, LockResponse},
    logoff::{LogoffRequest, LogoffResponse},
    negotiate::{NegotiateRequest, NegotiateResponse},
    oplock_break::OplockBreak,
    query_directory::{QueryDirectoryRequest, QueryDirectoryResponse},
    query_info::{QueryInfoRequest, QueryInfoResponse},
    read::{ReadRequest, ReadResponse},
    session_setup::{SessionSetupRequest, SessionSetupResponse},
    set_info::{SetInfoRequest, SetInfoResponse},
    smb1_negotiate::Smb1Negotiate,
    tree_connect::{TreeConnectRequest, TreeConnectResponse},
    tree_disconnect::{TreeDisconnectRequest, TreeDisconnectResponse},
    write::{WriteRequest, WriteResponse},
};
use smb_core::signing::{Algorithm, SigningKey};

fuzz_target!(|data: &[u8]| {
    // The bytes as a whole SMB2 payload (framing already stripped), so the fuzzer need not
    // discover the 4-byte prefix to reach the chain parser.
    parse_payload(data);

    // The bytes as a TCP receive stream: consume frames the way a driver does.
    let mut stream = data;
    while let Ok(Some(len)) = frame_len(stream, DEFAULT_MAX_FRAME) {
        let end = PREFIX_LEN + len;
        assert!(
            end <= stream.len(),
            "frame_len promised {len} bytes that are not there"
        );
        parse_payload(&stream[PREFIX_LEN..end]);
        stream = &stream[end..];
    }
});

fn parse_payload(payload: &[u8]) {
    // An SMB1 multi-protocol NEGOTIATE is the one non-SMB2 payload a server reads.
    let _ = Smb1Negotiate::read(payload);

    check_signing(payload);

    let Ok(ranges) = split_chain(payload) else {
        return;
    };
    // The ranges tile the payload, in order, each at least a header and 8-byte aligned.
    assert!(!ranges.is_empty());
    let mut expected_start = 0;
    for range in &ranges {
        assert_eq!(range.start, expected_start);
        assert_eq!(range.start % 8, 0);
        assert!(range.len() >= HEADER_LEN);
        expected_start = range.end;
    }
    assert_eq!(expected_start, payload.len());

    // Rebuilding the chain from its parts gives back the same bytes.
    let parts: Vec<Vec<u8>> = ranges.iter().map(|r| payload[r.clone()].to_vec()).collect();
    assert_eq!(build_chain(&parts), payload);

    for part in &parts {
        let Ok(header) = Header::parse(part) else {
            continue;
        };
        // A parsed header re-encodes to the bytes it came from.
        let mut again = Vec::with_capacity(HEADER_LEN);
        header.encode(&mut again);
        assert_eq!(again, part[..HEADER_LEN]);
        parse_bodies(part);
        // The info buffers a QUERY_INFO/SET_INFO/IOCTL carries, fed the body bytes.
        parse_info_buffers(&part[HEADER_LEN..]);
    }
}

/// Every body parser on every message (a peer chooses the command, so each parser must
/// survive any body). What parses must survive encode then read unchanged.
fn parse_bodies(message: &[u8]) {
    macro_rules! round_trip {
        ($($ty:ty),* $(,)?) => {$(
            if let Ok(body) = <$ty>::read(message) {
                let mut again = message[..HEADER_LEN].to_vec();
                body.encode(&mut again);
                let back = <$ty>::read(&again).unwrap_or_else(|e| {
                    panic!("{}: re-encoded body does not parse: {e}", stringify!($ty))
                });
                assert_eq!(back, body, "{} changed in an encode/read round trip", stringify!($ty));
            }
        )*};
    }
    round_trip!(
        CancelRequest,
        ChangeNotifyRequest,
        ChangeNotifyResponse,
        CloseRequest,
        CloseResponse,
        CreateRequest,
        CreateResponse,
        EchoRequest,
        EchoResponse,
        ErrorResponse,
        FlushRequest,
        FlushResponse,
        IoctlRequest,
        IoctlResponse,
        LockRequest,
        LockResponse,
        LogoffRequest,
        LogoffResponse,
        NegotiateRequest,
        NegotiateResponse,
        OplockBreak,
        QueryDirectoryRequest,
        QueryDirectoryResponse,
        QueryInfoRequest,
        QueryInfoResponse,
        ReadRequest,
        ReadResponse,
        SessionSetupRequest,
        SessionSetupResponse,
        SetInfoRequest,
        SetInfoResponse,
        TreeConnectRequest,
        TreeConnectResponse,
        TreeDisconnectRequest,
        TreeDisconnectResponse,
        WriteRequest,
        WriteResponse,
    );
}

/// The information-class buffers inside QUERY_INFO, SET_INFO, QUERY_DIRECTORY and IOCTL.
/// What parses must survive encode then read unchanged.
fn parse_info_buffers(buf: &[u8]) {
    macro_rules! round_trip {
        ($($ty:ty),* $(,)?) => {$(
            if let Ok(info) = <$ty>::read(buf) {
                let mut again = Vec::new();
                info.encode(&mut again);
                let back = <$ty>::read(&again).unwrap_or_else(|e| {
                    panic!("{}: re-encoded buffer does not parse: {e}", stringify!($ty))
                });
                assert_eq!(back, info, "{} changed in an encode/read round trip", stringify!($ty));
            }
        )*};
    }
    round_trip!(
        ValidateNegotiateInfoRequest,
        ValidateNegotiateInfoResponse,
        FileAllInformation,
        FileAttributeTagInformation,
        FileBasicInformation,
        FileDispositionInformation,
        FileFsAttributeInformation,
        FileFsDeviceInformation,
        FileFsFullSizeInformation,
        FileFsSectorSizeInformation,
        FileFsSizeInformation,
        FileFsVolumeInformation,
        FileNameInformation,
        FileNetworkOpenInformation,
        FileRenameInformation,
        FileStandardInformation,
    );
    // SecurityDescriptor::encode always sets SE_SELF_RELATIVE (a wire descriptor is
    // self-relative), so a descriptor read without it comes back with it: found by this
    // target, see smb-core/tests/fuzz_regressions.rs. Its encoding must still be stable.
    if let Ok(sd) = SecurityDescriptor::read(buf) {
        let mut first = Vec::new();
        sd.encode(&mut first);
        let back = SecurityDescriptor::read(&first).expect("re-encoded descriptor parses");
        let mut second = Vec::new();
        back.encode(&mut second);
        assert_eq!(first, second, "SecurityDescriptor encoding is not stable");
    }
    let _ = FileStreamInformation::read_list(buf);
    for class in [
        FileInfoClass::DIRECTORY,
        FileInfoClass::FULL_DIRECTORY,
        FileInfoClass::BOTH_DIRECTORY,
        FileInfoClass::NAMES,
    ] {
        let _ = decode_directory_entries(class, buf);
    }
}

/// Verifying untrusted bytes never panics; signing a chain then verifying it succeeds.
fn check_signing(payload: &[u8]) {
    for algorithm in [
        Algorithm::HmacSha256,
        Algorithm::AesCmac,
        Algorithm::AesGmac,
    ] {
        let key =
            SigningKey::new(algorithm, &[0x42; 16]).expect("16-byte key fits every algorithm");
        let _ = key.verify_chain(payload);
        let _ = key.verify(payload);
        let mut signed = payload.to_vec();
        if key.sign_chain(&mut signed).is_ok() {
            key.verify_chain(&signed)
                .expect("a chain we just signed verifies");
        }
    }
}
