//! SMB2 NEGOTIATE request and response (MS-SMB2 2.2.3, 2.2.4) with the 3.1.1 negotiate
//! contexts (2.2.3.1).

use std::fmt;

use super::{align8, body_impl, buffer, len_u16, len_u32, put_buffer};
use crate::codec::{slice_at, DecodeError, InvalidReason, Reader, Writer};
pub use crate::enums::{CipherId, SigningAlgorithmId};
use crate::header::{wire_enum, Dialect, HEADER_LEN};

/// Capabilities bits (MS-SMB2 2.2.3 / 2.2.4).
pub mod capabilities {
    /// Capabilities bits: `DFS` = 0x0000_0001 (MS-SMB2 2.2.3).
    pub const DFS: u32 = 0x0000_0001;
    /// Capabilities bits: `LEASING` = 0x0000_0002 (MS-SMB2 2.2.3).
    pub const LEASING: u32 = 0x0000_0002;
    /// Capabilities bits: `LARGE_MTU` = 0x0000_0004 (MS-SMB2 2.2.3).
    pub const LARGE_MTU: u32 = 0x0000_0004;
    /// Capabilities bits: `MULTI_CHANNEL` = 0x0000_0008 (MS-SMB2 2.2.3).
    pub const MULTI_CHANNEL: u32 = 0x0000_0008;
    /// Capabilities bits: `PERSISTENT_HANDLES` = 0x0000_0010 (MS-SMB2 2.2.3).
    pub const PERSISTENT_HANDLES: u32 = 0x0000_0010;
    /// Capabilities bits: `DIRECTORY_LEASING` = 0x0000_0020 (MS-SMB2 2.2.3).
    pub const DIRECTORY_LEASING: u32 = 0x0000_0020;
    /// Capabilities bits: `ENCRYPTION` = 0x0000_0040 (MS-SMB2 2.2.3).
    pub const ENCRYPTION: u32 = 0x0000_0040;
    /// Capabilities bits: `NOTIFICATIONS` = 0x0000_0080 (MS-SMB2 2.2.3).
    pub const NOTIFICATIONS: u32 = 0x0000_0080;
}

wire_enum! {
    /// Negotiate context types (MS-SMB2 2.2.3.1).
    NegotiateContextType(u16) {
        PREAUTH_INTEGRITY_CAPABILITIES = 0x0001,
        ENCRYPTION_CAPABILITIES = 0x0002,
        COMPRESSION_CAPABILITIES = 0x0003,
        NETNAME_NEGOTIATE_CONTEXT_ID = 0x0005,
        TRANSPORT_CAPABILITIES = 0x0006,
        RDMA_TRANSFORM_CAPABILITIES = 0x0007,
        SIGNING_CAPABILITIES = 0x0008,
    }
}

wire_enum! {
    /// Preauth integrity hash algorithms (MS-SMB2 2.2.3.1.1).
    HashAlgorithm(u16) {
        SHA512 = 0x0001,
    }
}

/// One negotiate context. Known types are parsed; any other is kept raw so it round-trips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateContext {
    /// SMB2_PREAUTH_INTEGRITY_CAPABILITIES (2.2.3.1.1).
    PreauthIntegrity {
        /// HashAlgorithms (2.2.3.1.1): SHA-512 is the only one defined.
        hash_algorithms: Vec<HashAlgorithm>,
        /// Salt (2.2.3.1.1): random bytes mixed into the preauth hash.
        salt: Vec<u8>,
    },
    /// SMB2_ENCRYPTION_CAPABILITIES (2.2.3.1.2).
    Encryption {
        /// Ciphers, in the sender's order of preference.
        ciphers: Vec<CipherId>,
    },
    /// SMB2_SIGNING_CAPABILITIES (2.2.3.1.7).
    Signing {
        /// Signing algorithms, in the sender's order of preference.
        algorithms: Vec<SigningAlgorithmId>,
    },
    /// Any other context, as type + data.
    Other {
        /// ContextType (2.2.3.1) of the unknown context.
        context_type: NegotiateContextType,
        /// Data of the unknown context, raw.
        data: Vec<u8>,
    },
}

impl NegotiateContext {
    /// The NegotiateContextType this context is sent with.
    pub fn context_type(&self) -> NegotiateContextType {
        match self {
            NegotiateContext::PreauthIntegrity { .. } => {
                NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES
            }
            NegotiateContext::Encryption { .. } => NegotiateContextType::ENCRYPTION_CAPABILITIES,
            NegotiateContext::Signing { .. } => NegotiateContextType::SIGNING_CAPABILITIES,
            NegotiateContext::Other { context_type, .. } => *context_type,
        }
    }

    fn encode_data(&self, out: &mut Vec<u8>) {
        match self {
            NegotiateContext::PreauthIntegrity {
                hash_algorithms,
                salt,
            } => {
                out.put_u16(len_u16(hash_algorithms.len()));
                out.put_u16(len_u16(salt.len()));
                for h in hash_algorithms {
                    out.put_u16(h.0);
                }
                out.put_bytes(salt);
            }
            NegotiateContext::Encryption { ciphers } => {
                out.put_u16(len_u16(ciphers.len()));
                for c in ciphers {
                    out.put_u16(c.0);
                }
            }
            NegotiateContext::Signing { algorithms } => {
                out.put_u16(len_u16(algorithms.len()));
                for a in algorithms {
                    out.put_u16(a.0);
                }
            }
            NegotiateContext::Other { data, .. } => out.put_bytes(data),
        }
    }

    /// Appends ContextType, DataLength, Reserved and Data (no alignment).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.context_type().0);
        let len_at = out.len();
        out.put_u16(0);
        out.put_u32(0);
        let start = out.len();
        self.encode_data(out);
        let len = len_u16(out.len() - start);
        out.patch_u16(len_at, len);
    }

    /// Parses one context's Data. Like Windows and Samba (`smbd_smb2_request_process_negprot`),
    /// a DataLength longer than the structure it carries is accepted and the rest ignored: nmap's
    /// PREAUTH_INTEGRITY_CAPABILITIES has DataLength 44 for 38 bytes of contents. A count that
    /// runs past DataLength is an error. The counts' "MUST be greater than zero" rules are the
    /// server's to enforce (MS-SMB2 3.3.5.4), not the codec's.
    fn parse(context_type: NegotiateContextType, data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let ctx = match context_type {
            NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES => {
                const W: &str = "PREAUTH_INTEGRITY_CAPABILITIES";
                let count = r.u16(W)?;
                let salt_len = r.u16(W)? as usize;
                let hash_algorithms = (0..count)
                    .map(|_| r.u16(W).map(HashAlgorithm))
                    .collect::<Result<_, _>>()?;
                let salt = r.take(salt_len, W)?.to_vec();
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms,
                    salt,
                }
            }
            NegotiateContextType::ENCRYPTION_CAPABILITIES => {
                const W: &str = "ENCRYPTION_CAPABILITIES";
                let count = r.u16(W)?;
                let ciphers = (0..count)
                    .map(|_| r.u16(W).map(CipherId))
                    .collect::<Result<_, _>>()?;
                NegotiateContext::Encryption { ciphers }
            }
            NegotiateContextType::SIGNING_CAPABILITIES => {
                const W: &str = "SIGNING_CAPABILITIES";
                let count = r.u16(W)?;
                let algorithms = (0..count)
                    .map(|_| r.u16(W).map(SigningAlgorithmId))
                    .collect::<Result<_, _>>()?;
                NegotiateContext::Signing { algorithms }
            }
            other => NegotiateContext::Other {
                context_type: other,
                data: data.to_vec(),
            },
        };
        Ok(ctx)
    }

    /// For a context kept raw, its leading u16 count (CompressionAlgorithmCount,
    /// TransformCount, ...), if it has one and the data is long enough.
    pub fn leading_count(&self) -> Option<u16> {
        match self {
            NegotiateContext::PreauthIntegrity {
                hash_algorithms, ..
            } => Some(len_u16(hash_algorithms.len())),
            NegotiateContext::Encryption { ciphers } => Some(len_u16(ciphers.len())),
            NegotiateContext::Signing { algorithms } => Some(len_u16(algorithms.len())),
            NegotiateContext::Other { data, .. } => {
                Some(u16::from_le_bytes([*data.first()?, *data.get(1)?]))
            }
        }
    }
}

/// Writes a context list at the next 8-byte boundary; returns its offset from the header.
fn encode_contexts(out: &mut Vec<u8>, contexts: &[NegotiateContext]) -> usize {
    // MS-SMB2 2.2.3: the first context is 8-byte aligned, and so is every following one.
    out.pad_to(8);
    let at = out.len();
    for (i, c) in contexts.iter().enumerate() {
        if i > 0 {
            out.pad_to(8);
        }
        c.encode(out);
    }
    at
}

/// Reads `count` contexts starting at `offset` in `message`.
fn read_contexts(
    message: &[u8],
    offset: usize,
    count: u16,
    min_offset: usize,
) -> Result<Vec<NegotiateContext>, DecodeError> {
    const W: &str = "NegotiateContextList";
    if count == 0 {
        return Ok(Vec::new());
    }
    if offset < min_offset {
        return Err(DecodeError::invalid(
            "NegotiateContextOffset",
            InvalidReason::OffsetTooSmall {
                offset,
                min: min_offset,
            },
        ));
    }
    if !offset.is_multiple_of(8) {
        return Err(DecodeError::invalid(
            "NegotiateContextOffset",
            InvalidReason::Unaligned { offset },
        ));
    }
    let mut out = Vec::with_capacity(usize::from(count).min(16));
    let mut pos = offset;
    for i in 0..count {
        if i > 0 {
            pos = align8(pos);
        }
        // ContextType, DataLength, Reserved (MS-SMB2 2.2.3.1).
        let mut head = Reader::new(slice_at(message, pos, 8, W)?);
        let context_type = NegotiateContextType(head.u16(W)?);
        let len = usize::from(head.u16(W)?);
        let data = slice_at(message, pos + 8, len, W)?;
        out.push(NegotiateContext::parse(context_type, data)?);
        pos += 8 + len;
    }
    Ok(out)
}

/// Where a NEGOTIATE request's NegotiateContextList lies (NegotiateContextOffset and
/// NegotiateContextCount), from [`NegotiateRequest::read_without_contexts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextList {
    /// NegotiateContextOffset (2.2.3): from the start of the SMB2 header.
    pub offset: u32,
    /// NegotiateContextCount (2.2.3).
    pub count: u16,
    /// The end of the Dialects array: the list may not start before it.
    min_offset: usize,
}

impl ContextList {
    /// Reads the list from the request `message` it came from.
    pub fn read(&self, message: &[u8]) -> Result<Vec<NegotiateContext>, DecodeError> {
        read_contexts(message, self.offset as usize, self.count, self.min_offset)
    }
}

/// A 16-byte GUID, printed in the usual form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

/// SMB2 NEGOTIATE request (MS-SMB2 2.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiateRequest {
    /// SMB2_NEGOTIATE_SIGNING_ENABLED / _REQUIRED (see `policy`).
    pub security_mode: u16,
    /// Capabilities: SMB2_GLOBAL_CAP_* bits.
    pub capabilities: u32,
    /// ClientGuid (2.2.3): identifies the client across connections.
    pub client_guid: Guid,
    /// ClientStartTime: on the wire only when 3.1.1 is not offered (then the 8 bytes hold
    /// the context offset and count instead).
    pub client_start_time: u64,
    /// The dialect revisions (0x0202, 0x0210, 0x0300, 0x0302, 0x0311) offered.
    pub dialects: Vec<Dialect>,
    /// Negotiate contexts; only sent when 3.1.1 is among `dialects`.
    pub contexts: Vec<NegotiateContext>,
}

impl NegotiateRequest {
    /// StructureSize the spec fixes for this body (MS-SMB2 2.2.3); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 36;
    const FIXED_END: usize = HEADER_LEN + 36;

    fn offers_311(&self) -> bool {
        self.dialects.contains(&Dialect::SMB311)
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(len_u16(self.dialects.len()));
        out.put_u16(self.security_mode);
        out.put_u16(0);
        out.put_u32(self.capabilities);
        out.put_bytes(&self.client_guid.0);
        let ctx_at = out.len();
        if self.offers_311() {
            out.put_u32(0); // NegotiateContextOffset, patched below
            out.put_u16(len_u16(self.contexts.len()));
            out.put_u16(0);
        } else {
            out.put_u64(self.client_start_time);
        }
        for d in &self.dialects {
            out.put_u16(d.0);
        }
        if self.offers_311() && !self.contexts.is_empty() {
            let off = encode_contexts(out, &self.contexts);
            out.patch_u32(ctx_at, len_u32(off));
        }
    }

    /// Reads the request with its context list (when 3.1.1 is offered).
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        let (mut req, list) = Self::read_without_contexts(message)?;
        if let Some(list) = list {
            req.contexts = list.read(message)?;
        }
        Ok(req)
    }

    /// Reads everything but the context list, and says where that list is when 3.1.1 is
    /// offered. A server reads the list only once it selected 3.1.1: MS-SMB2 3.3.5.4 processes
    /// the NegotiateContextList "if Connection.Dialect is 3.1.1", and Samba ignores it
    /// otherwise, so a malformed list offered beside an older dialect does not fail.
    pub fn read_without_contexts(
        message: &[u8],
    ) -> Result<(Self, Option<ContextList>), DecodeError> {
        const W: &str = "NEGOTIATE request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let dialect_count = r.u16(W)?;
        // MS-SMB2 3.3.5.4: DialectCount 0 MUST be failed with STATUS_INVALID_PARAMETER.
        if dialect_count == 0 {
            return Err(DecodeError::invalid("DialectCount", InvalidReason::Zero));
        }
        let security_mode = r.u16(W)?;
        r.skip(2, W)?; // Reserved: any value
        let capabilities = r.u32(W)?;
        let client_guid = Guid(r.array(W)?);
        let ctx_fields = r.array::<8>(W)?;
        let dialects = (0..dialect_count)
            .map(|_| r.u16(W).map(Dialect))
            .collect::<Result<Vec<_>, _>>()?;
        let mut req = NegotiateRequest {
            security_mode,
            capabilities,
            client_guid,
            client_start_time: 0,
            dialects,
            contexts: Vec::new(),
        };
        let mut list = None;
        if req.offers_311() {
            let mut fields = Reader::new(&ctx_fields);
            let offset = fields.u32(W)?;
            let count = fields.u16(W)?;
            // Reserved2: any value.
            list = Some(ContextList {
                offset,
                count,
                min_offset: Self::FIXED_END + 2 * usize::from(dialect_count),
            });
        } else {
            req.client_start_time = u64::from_le_bytes(ctx_fields);
        }
        Ok((req, list))
    }

    /// The first context of the given kind, if any.
    pub fn context(&self, t: NegotiateContextType) -> Option<&NegotiateContext> {
        self.contexts.iter().find(|c| c.context_type() == t)
    }
}

body_impl!(NegotiateRequest, NEGOTIATE);

/// SMB2 NEGOTIATE response (MS-SMB2 2.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiateResponse {
    /// SecurityMode: SMB2_NEGOTIATE_SIGNING_ENABLED / _REQUIRED bits.
    pub security_mode: u16,
    /// DialectRevision (2.2.4): the dialect the server selected.
    pub dialect_revision: Dialect,
    /// ServerGuid (2.2.4): identifies the server.
    pub server_guid: Guid,
    /// Capabilities: SMB2_GLOBAL_CAP_* bits.
    pub capabilities: u32,
    /// MaxTransactSize (2.2.4): largest QUERY_INFO/SET_INFO/IOCTL buffer the server accepts.
    pub max_transact_size: u32,
    /// MaxReadSize (2.2.4): largest READ Length the server accepts.
    pub max_read_size: u32,
    /// MaxWriteSize (2.2.4): largest WRITE Length the server accepts.
    pub max_write_size: u32,
    /// FILETIME (100 ns since 1601-01-01).
    pub system_time: u64,
    /// ServerStartTime (2.2.4): FILETIME, 0 in modern servers.
    pub server_start_time: u64,
    /// The GSS token (SPNEGO NegTokenInit2), possibly empty.
    pub security_buffer: Vec<u8>,
    /// Contexts; only on the wire when `dialect_revision` is 3.1.1.
    pub contexts: Vec<NegotiateContext>,
}

impl NegotiateResponse {
    /// StructureSize the spec fixes for this body (MS-SMB2 2.2.4); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 65;
    const FIXED_END: usize = HEADER_LEN + 64;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let with_contexts = self.dialect_revision == Dialect::SMB311 && !self.contexts.is_empty();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialect_revision.0);
        out.put_u16(if with_contexts {
            len_u16(self.contexts.len())
        } else {
            0
        });
        out.put_bytes(&self.server_guid.0);
        out.put_u32(self.capabilities);
        out.put_u32(self.max_transact_size);
        out.put_u32(self.max_read_size);
        out.put_u32(self.max_write_size);
        out.put_u64(self.system_time);
        out.put_u64(self.server_start_time);
        let sec_at = out.len();
        out.put_u16(0);
        out.put_u16(len_u16(self.security_buffer.len()));
        let ctx_at = out.len();
        out.put_u32(0);
        let off = put_buffer(out, &self.security_buffer);
        out.patch_u16(sec_at, len_u16(off));
        if with_contexts {
            let off = encode_contexts(out, &self.contexts);
            out.patch_u32(ctx_at, len_u32(off));
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "NEGOTIATE response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let security_mode = r.u16(W)?;
        let dialect_revision = Dialect(r.u16(W)?);
        let context_count = r.u16(W)?;
        let server_guid = Guid(r.array(W)?);
        let capabilities = r.u32(W)?;
        let max_transact_size = r.u32(W)?;
        let max_read_size = r.u32(W)?;
        let max_write_size = r.u32(W)?;
        let system_time = r.u64(W)?;
        let server_start_time = r.u64(W)?;
        let sec_off = usize::from(r.u16(W)?);
        let sec_len = usize::from(r.u16(W)?);
        let ctx_off = r.u32(W)? as usize;
        let security_buffer =
            buffer(message, sec_off, sec_len, Self::FIXED_END, "SecurityBuffer")?.to_vec();
        // The context fields are Reserved for every dialect but 3.1.1.
        let contexts = if dialect_revision == Dialect::SMB311 {
            read_contexts(message, ctx_off, context_count, Self::FIXED_END)?
        } else {
            Vec::new()
        };
        Ok(NegotiateResponse {
            security_mode,
            dialect_revision,
            server_guid,
            capabilities,
            max_transact_size,
            max_read_size,
            max_write_size,
            system_time,
            server_start_time,
            security_buffer,
            contexts,
        })
    }

    /// The first context of the given kind, if any.
    pub fn context(&self, t: NegotiateContextType) -> Option<&NegotiateContext> {
        self.contexts.iter().find(|c| c.context_type() == t)
    }
}

body_impl!(NegotiateResponse, NEGOTIATE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    fn contexts() -> Vec<NegotiateContext> {
        vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HashAlgorithm::SHA512],
                salt: (0u8..32).collect(),
            },
            NegotiateContext::Encryption {
                ciphers: vec![CipherId::AES_128_GCM, CipherId::AES_128_CCM],
            },
            NegotiateContext::Other {
                context_type: NegotiateContextType::NETNAME_NEGOTIATE_CONTEXT_ID,
                data: crate::codec::utf16le("srv"),
            },
            NegotiateContext::Signing {
                algorithms: vec![
                    SigningAlgorithmId::AES_GMAC,
                    SigningAlgorithmId::AES_CMAC,
                    SigningAlgorithmId::HMAC_SHA256,
                ],
            },
        ]
    }

    #[test]
    fn request_round_trip_with_contexts_aligned() {
        let r = NegotiateRequest {
            security_mode: 1,
            capabilities: capabilities::LARGE_MTU | capabilities::ENCRYPTION,
            client_guid: Guid([0xAB; 16]),
            client_start_time: 0,
            dialects: Dialect::ALL.to_vec(),
            contexts: contexts(),
        };
        let msg = build(&req(Command::NEGOTIATE), &r);
        // 5 dialects end at 64+36+10 = 110, so contexts start at 112.
        assert_eq!(u32::from_le_bytes(msg[92..96].try_into().unwrap()), 112);
        assert_eq!(NegotiateRequest::read(&msg).unwrap(), r);
    }

    #[test]
    fn request_without_311_keeps_start_time() {
        let r = NegotiateRequest {
            security_mode: 2,
            dialects: vec![Dialect::SMB202, Dialect::SMB21],
            client_start_time: 0x0102_0304_0506_0708,
            ..Default::default()
        };
        let msg = build(&req(Command::NEGOTIATE), &r);
        assert_eq!(msg.len(), 64 + 36 + 4);
        assert_eq!(NegotiateRequest::read(&msg).unwrap(), r);
    }

    #[test]
    fn response_round_trip() {
        for dialect in [Dialect::SMB311, Dialect::SMB30, Dialect::WILDCARD] {
            let r = NegotiateResponse {
                security_mode: 3,
                dialect_revision: dialect,
                server_guid: Guid([7; 16]),
                capabilities: capabilities::LARGE_MTU,
                max_transact_size: 8 << 20,
                max_read_size: 8 << 20,
                max_write_size: 8 << 20,
                system_time: 133_000_000_000_000_000,
                server_start_time: 0,
                security_buffer: b"\x60\x0bspnego-ish".to_vec(),
                contexts: if dialect == Dialect::SMB311 {
                    contexts()
                } else {
                    vec![]
                },
            };
            let msg = build(&resp(Command::NEGOTIATE), &r);
            assert_eq!(u16::from_le_bytes([msg[64 + 56], msg[64 + 57]]), 128);
            assert_eq!(NegotiateResponse::read(&msg).unwrap(), r);
        }
    }

    #[test]
    fn malformed_contexts_are_errors() {
        let r = NegotiateRequest {
            dialects: vec![Dialect::SMB311],
            contexts: contexts(),
            ..Default::default()
        };
        let msg = build(&req(Command::NEGOTIATE), &r);
        // Context count larger than the list.
        let mut m = msg.clone();
        m[96] = 50;
        assert!(NegotiateRequest::read(&m).is_err());
        // Offset past the end, and misaligned.
        let mut m = msg.clone();
        m[92..96].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
        assert!(NegotiateRequest::read(&m).is_err());
        let mut m = msg.clone();
        m[92..96].copy_from_slice(&105u32.to_le_bytes());
        assert!(NegotiateRequest::read(&m).is_err());
        // A preauth context whose salt length runs past its data.
        let mut m = msg.clone();
        let ctx = 104usize;
        m[ctx + 10] = 0xFF;
        assert!(NegotiateRequest::read(&m).is_err());
        // Truncated at every length: never a panic.
        for n in 0..msg.len() {
            let _ = NegotiateRequest::read(&msg[..n]);
        }
        // DialectCount 0.
        let mut m = msg;
        m[66] = 0;
        assert!(NegotiateRequest::read(&m).is_err());
    }
}
