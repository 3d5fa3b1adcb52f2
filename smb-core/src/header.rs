//! The 64-byte SMB2 header (MS-SMB2 2.2.1), sync and async forms, and the wire enums
//! that appear in it.

use std::fmt;

use crate::codec::{DecodeError, InvalidReason, Reader, Writer};

/// `0xFE 'S' 'M' 'B'`: the SMB2 protocol id.
pub const PROTOCOL_ID: [u8; 4] = [0xFE, b'S', b'M', b'B'];
/// `0xFF 'S' 'M' 'B'`: SMB1, which we never speak (only the multi-protocol NEGOTIATE is answered).
pub const SMB1_PROTOCOL_ID: [u8; 4] = [0xFF, b'S', b'M', b'B'];
/// `0xFD 'S' 'M' 'B'`: an SMB2 TRANSFORM header (encrypted message).
pub const TRANSFORM_PROTOCOL_ID: [u8; 4] = [0xFD, b'S', b'M', b'B'];
/// Every SMB2 header is 64 bytes.
pub const HEADER_LEN: usize = 64;
/// Offset of the 16-byte signature inside the header.
pub const SIGNATURE_OFFSET: usize = 48;
/// Length of the signature field.
pub const SIGNATURE_LEN: usize = 16;
/// Offset of the 4-byte Flags field.
pub const FLAGS_OFFSET: usize = 16;
/// Offset of the 4-byte NextCommand field.
pub const NEXT_COMMAND_OFFSET: usize = 20;
/// Offset of the 8-byte MessageId field.
pub const MESSAGE_ID_OFFSET: usize = 24;
/// Offset of the 8-byte SessionId field.
pub const SESSION_ID_OFFSET: usize = 40;
/// Offset of the 2-byte Command field.
pub const COMMAND_OFFSET: usize = 12;
/// MessageId of an unsolicited oplock break notification; never signed.
pub const OPLOCK_BREAK_MESSAGE_ID: u64 = u64::MAX;

/// Declares a newtype over an integer with named constants; unknown values round-trip
/// and print in hex.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident($int:ty) { $($(#[$vm:meta])* $var:ident = $val:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $int);
        impl $name {
            $(
                $(#[$vm])*
                #[doc = concat!("\n\nOn the wire: `", stringify!($val), "`.")]
                pub const $var: $name = $name($val);
            )*
            /// The constant's name, if this value has one.
            pub fn name(self) -> Option<&'static str> {
                match self { $($name::$var => Some(stringify!($var)),)* _ => None }
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}(0x{:0w$X})", stringify!($name), self.0, w = 2 * std::mem::size_of::<$int>()),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Debug::fmt(self, f) }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// SMB2 command codes (MS-SMB2 2.2.1.2).
    Command(u16) {
        NEGOTIATE = 0x0000,
        SESSION_SETUP = 0x0001,
        LOGOFF = 0x0002,
        TREE_CONNECT = 0x0003,
        TREE_DISCONNECT = 0x0004,
        CREATE = 0x0005,
        CLOSE = 0x0006,
        FLUSH = 0x0007,
        READ = 0x0008,
        WRITE = 0x0009,
        LOCK = 0x000A,
        IOCTL = 0x000B,
        CANCEL = 0x000C,
        ECHO = 0x000D,
        QUERY_DIRECTORY = 0x000E,
        CHANGE_NOTIFY = 0x000F,
        QUERY_INFO = 0x0010,
        SET_INFO = 0x0011,
        OPLOCK_BREAK = 0x0012,
    }
}

wire_enum! {
    /// SMB2 dialect revision numbers (MS-SMB2 2.2.3).
    Dialect(u16) {
        SMB202 = 0x0202,
        SMB21 = 0x0210,
        SMB30 = 0x0300,
        SMB302 = 0x0302,
        SMB311 = 0x0311,
        /// "SMB 2.???": the reply to a multi-protocol SMB1 NEGOTIATE.
        WILDCARD = 0x02FF,
    }
}

impl Dialect {
    /// All dialects we implement, oldest first.
    pub const ALL: [Dialect; 5] = [
        Dialect::SMB202,
        Dialect::SMB21,
        Dialect::SMB30,
        Dialect::SMB302,
        Dialect::SMB311,
    ];

    /// True for the 3.x family (AES signing, KDF-derived keys).
    pub fn is_smb3(self) -> bool {
        self.0 >= 0x0300 && self != Dialect::WILDCARD
    }

    /// Parses "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1" (also "202", "311", "smb3_11"...).
    pub fn parse(s: &str) -> Option<Dialect> {
        let t: String = s
            .trim()
            .to_ascii_lowercase()
            .trim_start_matches("smb")
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        match t.as_str() {
            "202" => Some(Dialect::SMB202),
            "21" | "210" => Some(Dialect::SMB21),
            "3" | "30" | "300" => Some(Dialect::SMB30),
            "302" => Some(Dialect::SMB302),
            "311" => Some(Dialect::SMB311),
            _ => None,
        }
    }

    /// Human form: "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1".
    pub fn dotted(self) -> String {
        match self {
            Dialect::SMB202 => "2.0.2".into(),
            Dialect::SMB21 => "2.1".into(),
            Dialect::SMB30 => "3.0".into(),
            Dialect::SMB302 => "3.0.2".into(),
            Dialect::SMB311 => "3.1.1".into(),
            other => format!("0x{:04x}", other.0),
        }
    }
}

wire_enum! {
    /// NTSTATUS codes used by SMB2 (MS-ERREF 2.3).
    NtStatus(u32) {
        SUCCESS = 0x0000_0000,
        PENDING = 0x0000_0103,
        NOTIFY_ENUM_DIR = 0x0000_010C,
        BUFFER_OVERFLOW = 0x8000_0005,
        NO_MORE_FILES = 0x8000_0006,
        UNSUCCESSFUL = 0xC000_0001,
        NOT_IMPLEMENTED = 0xC000_0002,
        INVALID_INFO_CLASS = 0xC000_0003,
        INFO_LENGTH_MISMATCH = 0xC000_0004,
        INVALID_HANDLE = 0xC000_0008,
        INVALID_PARAMETER = 0xC000_000D,
        NO_SUCH_FILE = 0xC000_000F,
        INVALID_DEVICE_REQUEST = 0xC000_0010,
        END_OF_FILE = 0xC000_0011,
        MORE_PROCESSING_REQUIRED = 0xC000_0016,
        ACCESS_DENIED = 0xC000_0022,
        BUFFER_TOO_SMALL = 0xC000_0023,
        OBJECT_NAME_INVALID = 0xC000_0033,
        OBJECT_NAME_NOT_FOUND = 0xC000_0034,
        OBJECT_NAME_COLLISION = 0xC000_0035,
        OBJECT_PATH_NOT_FOUND = 0xC000_003A,
        SHARING_VIOLATION = 0xC000_0043,
        DELETE_PENDING = 0xC000_0056,
        PRIVILEGE_NOT_HELD = 0xC000_0061,
        LOGON_FAILURE = 0xC000_006D,
        ACCOUNT_RESTRICTION = 0xC000_006E,
        DISK_FULL = 0xC000_007F,
        INSUFFICIENT_RESOURCES = 0xC000_009A,
        FILE_IS_A_DIRECTORY = 0xC000_00BA,
        NOT_SUPPORTED = 0xC000_00BB,
        NETWORK_NAME_DELETED = 0xC000_00C9,
        BAD_NETWORK_NAME = 0xC000_00CC,
        REQUEST_NOT_ACCEPTED = 0xC000_00D0,
        INTERNAL_ERROR = 0xC000_00E5,
        DIRECTORY_NOT_EMPTY = 0xC000_0101,
        NOT_A_DIRECTORY = 0xC000_0103,
        CANCELLED = 0xC000_0120,
        FILE_CLOSED = 0xC000_0128,
        USER_SESSION_DELETED = 0xC000_0203,
        NETWORK_SESSION_EXPIRED = 0xC000_035C,
        HMAC_NOT_SUPPORTED = 0xC000_A001,
        INVALID_SIGNATURE = 0xC000_A000,
    }
}

impl NtStatus {
    /// Success, informational or warning (severity bits not 11): the response carries the
    /// command's body (a warning like BUFFER_OVERFLOW included).
    pub fn is_success(self) -> bool {
        self.0 >> 30 != 3
    }
    /// Error severity (the top two bits 11): the response carries an ERROR body.
    pub fn is_error(self) -> bool {
        self.0 >> 30 == 3
    }
}

/// Header flag bits (MS-SMB2 2.2.1.2).
pub mod flags {
    /// SMB2_FLAGS_SERVER_TO_REDIR: a response.
    pub const SERVER_TO_REDIR: u32 = 0x0000_0001;
    /// SMB2_FLAGS_ASYNC_COMMAND: the async header form (AsyncId instead of TreeId).
    pub const ASYNC_COMMAND: u32 = 0x0000_0002;
    /// SMB2_FLAGS_RELATED_OPERATIONS: a related message of a compound chain.
    pub const RELATED_OPERATIONS: u32 = 0x0000_0004;
    /// SMB2_FLAGS_SIGNED: the message carries a signature.
    pub const SIGNED: u32 = 0x0000_0008;
    /// SMB2_FLAGS_PRIORITY_MASK (3.1.1 I/O priority).
    pub const PRIORITY_MASK: u32 = 0x0000_0070;
    /// SMB2_FLAGS_DFS_OPERATIONS: a DFS path.
    pub const DFS_OPERATIONS: u32 = 0x1000_0000;
    /// SMB2_FLAGS_REPLAY_OPERATION: a replayed request (3.x multichannel).
    pub const REPLAY_OPERATION: u32 = 0x2000_0000;
}

/// The 64-byte SMB2 header. `async_id` is `Some` for the async form (ASYNC_COMMAND set),
/// in which case `tree_id` is not on the wire; otherwise the 4 bytes there are Reserved
/// (kept as `process_id` so they round-trip).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// CreditCharge: the credits this request consumes (0 on 2.0.2).
    pub credit_charge: u16,
    /// ChannelSequence/Reserved in requests, Status in responses (one 32-bit field).
    pub status: NtStatus,
    /// Command.
    pub command: Command,
    /// CreditRequest in requests, CreditResponse in responses.
    pub credits: u16,
    /// Flags ([`flags`]).
    pub flags: u32,
    /// NextCommand: offset of the next message of a compound chain, 0 for the last.
    pub next_command: u32,
    /// MessageId.
    pub message_id: u64,
    /// Reserved (sync form): the 4 bytes before TreeId, kept so they round-trip.
    pub process_id: u32,
    /// TreeId (sync form only).
    pub tree_id: u32,
    /// AsyncId: `Some` for the async form.
    pub async_id: Option<u64>,
    /// SessionId.
    pub session_id: u64,
    /// Signature: the 16-byte MAC, zero when unsigned.
    pub signature: [u8; 16],
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("command", &self.command)
            .field("status", &self.status)
            .field("flags", &format_args!("0x{:08x}", self.flags))
            .field("message_id", &self.message_id)
            .field("session_id", &format_args!("0x{:016x}", self.session_id))
            .field("tree_id", &self.tree_id)
            .field("async_id", &self.async_id)
            .field("credits", &self.credits)
            .field("next_command", &self.next_command)
            .finish()
    }
}

impl Header {
    /// A sync request header for `command`.
    pub fn request(command: Command, message_id: u64, session_id: u64, tree_id: u32) -> Self {
        Header {
            credit_charge: 1,
            command,
            credits: 1,
            message_id,
            session_id,
            tree_id,
            ..Header::default()
        }
    }

    /// The response header matching this request header.
    pub fn response(&self, status: NtStatus) -> Self {
        Header {
            credit_charge: self.credit_charge,
            status,
            command: self.command,
            credits: 1,
            flags: flags::SERVER_TO_REDIR | (self.flags & flags::PRIORITY_MASK),
            next_command: 0,
            message_id: self.message_id,
            process_id: self.process_id,
            tree_id: self.tree_id,
            async_id: None,
            session_id: self.session_id,
            signature: [0; 16],
        }
    }

    /// SERVER_TO_REDIR is set.
    pub fn is_response(&self) -> bool {
        self.flags & flags::SERVER_TO_REDIR != 0
    }

    /// SIGNED is set (which says nothing yet about the signature being valid).
    pub fn is_signed(&self) -> bool {
        self.flags & flags::SIGNED != 0
    }

    /// Reads the 64-byte header, checking ProtocolId and StructureSize.
    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        // MS-SMB2 2.2.1.2: "ProtocolId (4 bytes): ... The value MUST be set to 0x424D53FE"
        // and "StructureSize (2 bytes): This MUST be set to 64".
        let protocol = r.array::<4>("SMB2 header")?;
        if protocol != PROTOCOL_ID {
            return Err(DecodeError::invalid(
                "SMB2 header",
                InvalidReason::ProtocolId(protocol),
            ));
        }
        let structure_size = r.u16("SMB2 header")?;
        if structure_size != 64 {
            return Err(DecodeError::invalid(
                "SMB2 header",
                InvalidReason::StructureSize {
                    found: structure_size,
                    expected: 64,
                },
            ));
        }
        let credit_charge = r.u16("SMB2 header")?;
        let status = NtStatus(r.u32("SMB2 header")?);
        let command = Command(r.u16("SMB2 header")?);
        let credits = r.u16("SMB2 header")?;
        let flags = r.u32("SMB2 header")?;
        let next_command = r.u32("SMB2 header")?;
        let message_id = r.u64("SMB2 header")?;
        let (process_id, tree_id, async_id) = if flags & flags::ASYNC_COMMAND != 0 {
            (0, 0, Some(r.u64("SMB2 header")?))
        } else {
            (r.u32("SMB2 header")?, r.u32("SMB2 header")?, None)
        };
        let session_id = r.u64("SMB2 header")?;
        let signature = r.array::<16>("SMB2 header")?;
        Ok(Header {
            credit_charge,
            status,
            command,
            credits,
            flags,
            next_command,
            message_id,
            process_id,
            tree_id,
            async_id,
            session_id,
            signature,
        })
    }

    /// Parses the header at the start of `message` (the rest is left to the body codec).
    pub fn parse(message: &[u8]) -> Result<Self, DecodeError> {
        Header::read(&mut Reader::new(message))
    }

    /// Appends the 64-byte header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(&PROTOCOL_ID);
        out.put_u16(64);
        out.put_u16(self.credit_charge);
        out.put_u32(self.status.0);
        out.put_u16(self.command.0);
        out.put_u16(self.credits);
        let mut fl = self.flags & !flags::ASYNC_COMMAND;
        if self.async_id.is_some() {
            fl |= flags::ASYNC_COMMAND;
        }
        out.put_u32(fl);
        out.put_u32(self.next_command);
        out.put_u64(self.message_id);
        match self.async_id {
            Some(id) => out.put_u64(id),
            None => {
                out.put_u32(self.process_id);
                out.put_u32(self.tree_id);
            }
        }
        out.put_u64(self.session_id);
        out.put_bytes(&self.signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_and_async_round_trip() {
        for async_id in [None, Some(0x1122_3344_5566_7788)] {
            let h = Header {
                credit_charge: 3,
                status: NtStatus::PENDING,
                command: Command::READ,
                credits: 31,
                flags: flags::SERVER_TO_REDIR | flags::SIGNED,
                next_command: 0,
                message_id: 77,
                process_id: if async_id.is_some() { 0 } else { 0xFEFF },
                tree_id: if async_id.is_some() { 0 } else { 5 },
                async_id,
                session_id: 0xDEAD_BEEF,
                signature: [7; 16],
            };
            let mut buf = Vec::new();
            h.encode(&mut buf);
            assert_eq!(buf.len(), HEADER_LEN);
            assert_eq!(&buf[SIGNATURE_OFFSET..], &[7; 16]);
            let back = Header::parse(&buf).unwrap();
            assert_eq!(back.flags & flags::ASYNC_COMMAND != 0, async_id.is_some());
            assert_eq!(
                Header {
                    flags: h.flags,
                    ..back
                },
                h
            );
        }
    }

    #[test]
    fn rejects_wrong_protocol_and_short() {
        let mut buf = Vec::new();
        Header::default().encode(&mut buf);
        assert!(Header::parse(&buf[..63]).is_err());
        buf[0] = 0xFF;
        assert!(Header::parse(&buf).is_err());
    }

    #[test]
    fn unknown_values_print_in_hex() {
        assert_eq!(format!("{}", Command(0x99)), "Command(0x0099)");
        assert_eq!(format!("{}", NtStatus::ACCESS_DENIED), "ACCESS_DENIED");
        assert_eq!(Dialect::parse("3.1.1"), Some(Dialect::SMB311));
        assert_eq!(Dialect::parse("2.0.2"), Some(Dialect::SMB202));
        assert_eq!(Dialect::parse("4.0"), None);
    }
}
