//! The one named pipe the server offers on IPC$: `srvsvc`, with just enough DCE/RPC
//! (C706 connection-oriented PDUs, NDR32) to answer NetShareEnumAll level 1, so that
//! `smbclient -L` lists the shares. Every other operation gets an RPC fault.
//!
//! Input PDUs are bounded (one fragment, at most [`MAX_PDU`] bytes); output waits in the
//! pipe until the client reads it (READ) or is returned at once (FSCTL_PIPE_TRANSCEIVE).

use crate::codec::{utf16le, DecodeError, InvalidReason, Reader, Writer};

/// Largest request PDU accepted, and the fragment size announced in BIND_ACK.
pub(crate) const MAX_PDU: usize = 4280;
/// Unread answers a pipe holds before it refuses more requests: a client that writes
/// and never reads must not make them pile up without bound.
const MAX_UNREAD: usize = 64 * 1024;

/// srvsvc interface 4b324fc8-1670-01d3-1278-5a47bf6ee188 version 3.0 (MS-SRVS 1.9).
const SRVSVC: [u8; 16] = uuid(
    0x4b32_4fc8,
    0x1670,
    0x01d3,
    [0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1, 0x88],
);
/// NDR transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 version 2.
const NDR32: [u8; 16] = uuid(
    0x8a88_5d04,
    0x1ceb,
    0x11c9,
    [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60],
);
/// Bind time feature negotiation: 6cb71c2c-9812-4540-xxxx (C706 extension, MS-RPCE 3.3.1.5.3).
const BTFN_PREFIX: [u8; 8] = [0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45];

const PTYPE_REQUEST: u8 = 0;
const PTYPE_RESPONSE: u8 = 2;
const PTYPE_FAULT: u8 = 3;
const PTYPE_BIND: u8 = 11;
const PTYPE_BIND_ACK: u8 = 12;
const PTYPE_BIND_NAK: u8 = 13;
const PFC_FIRST_LAST: u8 = 0x03;
const PFC_OBJECT_UUID: u8 = 0x80;
/// nca_s_op_rng_error: the operation number is not supported.
const NCA_OP_RNG_ERROR: u32 = 0x1c01_0002;
/// nca_proto_error.
const NCA_PROTO_ERROR: u32 = 0x1c01_000b;
/// NetShareEnumAll (MS-SRVS 3.1.4.8).
const OPNUM_NET_SHARE_ENUM_ALL: u16 = 15;
/// STYPE_DISKTREE and STYPE_IPC | STYPE_SPECIAL (MS-SRVS 2.2.2.4).
const STYPE_DISKTREE: u32 = 0;
const STYPE_IPC_HIDDEN: u32 = 0x8000_0003;
/// WERROR_INVALID_LEVEL.
const WERR_INVALID_LEVEL: u32 = 124;

const fn uuid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// True for the pipe names the server opens ("srvsvc", also as "\PIPE\srvsvc").
pub(crate) fn is_srvsvc(name: &str) -> bool {
    let n = name.trim_start_matches('\\');
    let n = n
        .strip_prefix("PIPE\\")
        .or_else(|| n.strip_prefix("pipe\\"))
        .unwrap_or(n);
    n.eq_ignore_ascii_case("srvsvc")
}

/// One open srvsvc pipe.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pipe {
    /// (name, type, remark) of every share, IPC$ included.
    shares: Vec<(String, u32, String)>,
    /// Bytes the client has not read yet.
    pub(crate) output: Vec<u8>,
    bound: bool,
}

impl Pipe {
    pub(crate) fn new(disk_shares: impl IntoIterator<Item = String>) -> Self {
        let mut shares: Vec<(String, u32, String)> = disk_shares
            .into_iter()
            .map(|n| (n, STYPE_DISKTREE, String::new()))
            .collect();
        shares.push(("IPC$".into(), STYPE_IPC_HIDDEN, "IPC Service".into()));
        Pipe {
            shares,
            output: Vec::new(),
            bound: false,
        }
    }

    /// Handles one PDU written by the client; the answer is appended to `output`.
    pub(crate) fn write(&mut self, pdu: &[u8]) -> Result<(), DecodeError> {
        if pdu.len() > MAX_PDU {
            return Err(DecodeError::invalid(
                "DCE/RPC PDU",
                InvalidReason::RpcFragment,
            ));
        }
        if self.output.len() > MAX_UNREAD {
            return Err(DecodeError::invalid(
                "DCE/RPC pipe",
                InvalidReason::RpcUnreadOutput,
            ));
        }
        let mut r = Reader::new(pdu);
        const W: &str = "DCE/RPC header";
        let (vers, minor, ptype, flags) = (r.u8(W)?, r.u8(W)?, r.u8(W)?, r.u8(W)?);
        let drep = r.array::<4>(W)?;
        let frag_len = usize::from(r.u16(W)?);
        let auth_len = r.u16(W)?;
        let call_id = r.u32(W)?;
        if vers != 5
            || minor > 1
            || drep[0] & 0xF0 != 0x10
            || frag_len != pdu.len()
            || auth_len != 0
        {
            // Only little-endian, unauthenticated, whole PDUs.
            self.output.extend(fault(call_id, NCA_PROTO_ERROR));
            return Ok(());
        }
        match ptype {
            PTYPE_BIND => {
                let ack = self.bind(&mut r, call_id)?;
                self.output.extend(ack);
            }
            PTYPE_REQUEST if self.bound && flags & PFC_FIRST_LAST == PFC_FIRST_LAST => {
                let _alloc_hint = r.u32(W)?;
                let _ctx = r.u16(W)?;
                let opnum = r.u16(W)?;
                if flags & PFC_OBJECT_UUID != 0 {
                    r.skip(16, W)?;
                }
                let out = match opnum {
                    OPNUM_NET_SHARE_ENUM_ALL => response(call_id, &self.share_enum_all(r.rest())?),
                    _ => fault(call_id, NCA_OP_RNG_ERROR),
                };
                self.output.extend(out);
            }
            _ => self.output.extend(fault(call_id, NCA_PROTO_ERROR)),
        }
        Ok(())
    }

    /// BIND -> BIND_ACK accepting srvsvc over NDR32 (BIND_NAK if no context can be).
    fn bind(&mut self, r: &mut Reader, call_id: u32) -> Result<Vec<u8>, DecodeError> {
        const W: &str = "DCE/RPC BIND";
        let _max_xmit = r.u16(W)?;
        let _max_recv = r.u16(W)?;
        let _assoc = r.u32(W)?;
        let n = r.u8(W)?;
        r.skip(3, W)?;
        let mut results = Vec::new();
        for _ in 0..n {
            let _ctx_id = r.u16(W)?;
            let n_syntax = r.u8(W)?;
            r.skip(1, W)?;
            let abstract_syntax = r.array::<16>(W)?;
            let abstract_version = r.u32(W)?;
            let mut result = (2u16, 2u16, [0u8; 20]); // provider rejection: syntaxes not supported
            for _ in 0..n_syntax {
                let syntax = r.array::<16>(W)?;
                let version = r.u32(W)?;
                if abstract_syntax == SRVSVC
                    && abstract_version == 3
                    && syntax == NDR32
                    && version == 2
                {
                    let mut s = [0u8; 20];
                    s[..16].copy_from_slice(&NDR32);
                    s[16..].copy_from_slice(&2u32.to_le_bytes());
                    result = (0, 0, s);
                } else if syntax[..8] == BTFN_PREFIX && result.0 != 0 {
                    // negotiate_ack, no optional features.
                    result = (3, 0, [0u8; 20]);
                }
            }
            results.push(result);
        }
        if !results.iter().any(|r| r.0 == 0) {
            let mut out = header(PTYPE_BIND_NAK, call_id);
            out.put_u16(4); // reason: abstract syntax not supported
            out.put_u8(0);
            return Ok(finish(out));
        }
        self.bound = true;
        let mut out = header(PTYPE_BIND_ACK, call_id);
        out.put_u16(MAX_PDU as u16);
        out.put_u16(MAX_PDU as u16);
        out.put_u32(0x5342_0001); // assoc_group_id
        let port = b"\\PIPE\\srvsvc\0";
        out.put_u16(port.len() as u16);
        out.put_bytes(port);
        out.pad_to(4);
        out.put_u8(results.len() as u8);
        out.put_u8(0);
        out.put_u16(0);
        for (result, reason, syntax) in results {
            out.put_u16(result);
            out.put_u16(reason);
            out.put_bytes(&syntax);
        }
        Ok(finish(out))
    }

    /// NetShareEnumAll: reads ServerName and the info level, answers level 1.
    fn share_enum_all(&self, stub: &[u8]) -> Result<Vec<u8>, DecodeError> {
        const W: &str = "NetShareEnumAll";
        let mut r = Reader::new(stub);
        // [in, string, unique] wchar_t* ServerName.
        if r.u32(W)? != 0 {
            let _max = r.u32(W)?;
            let _offset = r.u32(W)?;
            let actual = r.u32(W)? as usize;
            r.skip(
                actual
                    .checked_mul(2)
                    .ok_or_else(|| DecodeError::invalid(W, InvalidReason::LengthOverflow))?,
                W,
            )?;
            let pad = (4 - r.position() % 4) % 4;
            r.skip(pad, W)?;
        }
        let level = r.u32(W)?;
        let mut out = Vec::new();
        if level != 1 {
            // Level, empty union arm, TotalEntries, no resume handle, WERROR.
            out.put_u32(level);
            out.put_u32(level);
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(WERR_INVALID_LEVEL);
            return Ok(out);
        }
        let n = self.shares.len() as u32;
        let mut referent = 0x0002_0000u32;
        let mut next_ref = || {
            referent += 4;
            referent
        };
        out.put_u32(1); // Level
        out.put_u32(1); // union switch
        out.put_u32(next_ref()); // -> SHARE_INFO_1_CONTAINER
        out.put_u32(n); // EntriesRead
        out.put_u32(next_ref()); // -> Buffer
        out.put_u32(n); // conformant array size
        for (_, stype, _) in &self.shares {
            out.put_u32(next_ref()); // shi1_netname
            out.put_u32(*stype);
            out.put_u32(next_ref()); // shi1_remark
        }
        for (name, _, remark) in &self.shares {
            put_string(&mut out, name);
            put_string(&mut out, remark);
        }
        out.put_u32(n); // TotalEntries
        out.put_u32(next_ref()); // ResumeHandle pointer
        out.put_u32(0);
        out.put_u32(0); // WERROR_OK
        Ok(out)
    }
}

/// An NDR conformant varying UTF-16 string with its NUL, padded to 4 bytes.
fn put_string(out: &mut Vec<u8>, s: &str) {
    let chars = s.encode_utf16().count() as u32 + 1;
    out.put_u32(chars);
    out.put_u32(0);
    out.put_u32(chars);
    out.put_bytes(&utf16le(s));
    out.put_u16(0);
    out.pad_to(4);
}

/// The 16-byte common header, frag_length patched by [`finish`].
fn header(ptype: u8, call_id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.put_bytes(&[5, 0, ptype, PFC_FIRST_LAST, 0x10, 0, 0, 0]);
    out.put_u16(0);
    out.put_u16(0);
    out.put_u32(call_id);
    out
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = out.len() as u16;
    out.patch_u16(8, len);
    out
}

fn response(call_id: u32, stub: &[u8]) -> Vec<u8> {
    let mut out = header(PTYPE_RESPONSE, call_id);
    out.put_u32(stub.len() as u32); // alloc_hint
    out.put_u16(0); // context id
    out.put_u8(0); // cancel count
    out.put_u8(0);
    out.put_bytes(stub);
    finish(out)
}

fn fault(call_id: u32, status: u32) -> Vec<u8> {
    let mut out = header(PTYPE_FAULT, call_id);
    out.put_u32(0);
    out.put_u16(0);
    out.put_u8(0);
    out.put_u8(0);
    out.put_u32(status);
    out.put_u32(0);
    finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind_pdu(syntax: [u8; 16]) -> Vec<u8> {
        let mut b = header(PTYPE_BIND, 7);
        b.put_u16(4280);
        b.put_u16(4280);
        b.put_u32(0);
        b.put_u8(1);
        b.put_bytes(&[0, 0, 0]);
        b.put_u16(0);
        b.put_u8(1);
        b.put_u8(0);
        b.put_bytes(&SRVSVC);
        b.put_u32(3);
        b.put_bytes(&syntax);
        b.put_u32(2);
        finish(b)
    }

    #[test]
    fn bind_then_share_enum_all() {
        let mut p = Pipe::new(["data".to_string()]);
        p.write(&bind_pdu(NDR32)).unwrap();
        let ack = std::mem::take(&mut p.output);
        assert_eq!(ack[2], PTYPE_BIND_ACK);
        assert_eq!(u16::from_le_bytes([ack[8], ack[9]]) as usize, ack.len());
        // Acceptance (result 0) of NDR32 at the end.
        assert_eq!(&ack[ack.len() - 24..ack.len() - 20], &[0, 0, 0, 0]);
        let mut req = header(PTYPE_REQUEST, 8);
        req.put_u32(0);
        req.put_u16(0);
        req.put_u16(OPNUM_NET_SHARE_ENUM_ALL);
        req.put_u32(0); // no server name
        req.put_u32(1); // level 1
        let req = finish(req);
        p.write(&req).unwrap();
        let resp = std::mem::take(&mut p.output);
        assert_eq!(resp[2], PTYPE_RESPONSE);
        let stub = &resp[24..];
        assert_eq!(
            &stub[12..16],
            &2u32.to_le_bytes(),
            "two shares: data and IPC$"
        );
        assert_eq!(&stub[stub.len() - 4..], &[0, 0, 0, 0], "WERR_OK");
        let text = String::from_utf16_lossy(
            &stub
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        );
        assert!(text.contains("data") && text.contains("IPC$"));
    }

    #[test]
    fn unknown_syntax_is_nak_and_garbage_is_a_fault() {
        let mut p = Pipe::new(Vec::new());
        p.write(&bind_pdu([9; 16])).unwrap();
        assert_eq!(p.output[2], PTYPE_BIND_NAK);
        let mut p = Pipe::new(Vec::new());
        p.write(&[5, 0, 0, 3, 0x10, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0])
            .unwrap();
        assert_eq!(p.output[2], PTYPE_FAULT, "request before bind");
        for n in 0..40 {
            let mut p = Pipe::new(Vec::new());
            let _ = p.write(&bind_pdu(NDR32)[..n]);
        }
        assert!(is_srvsvc("srvsvc") && is_srvsvc("\\PIPE\\srvsvc") && !is_srvsvc("lsarpc"));
    }

    #[test]
    fn unread_answers_are_bounded() {
        let mut p = Pipe::new(Vec::new());
        let bind = bind_pdu(NDR32);
        let refused = (0..10_000).find(|_| p.write(&bind).is_err());
        assert!(refused.is_some(), "a writer that never reads is refused");
        assert!(p.output.len() <= MAX_UNREAD + MAX_PDU, "{}", p.output.len());
        p.output.clear();
        assert!(p.write(&bind).is_ok(), "accepted again once read");
    }
}
