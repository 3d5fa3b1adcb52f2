//! Lease create contexts (MS-SMB2 2.2.13.2.8 SMB2_CREATE_REQUEST_LEASE, 2.2.13.2.10
//! SMB2_CREATE_REQUEST_LEASE_V2, 2.2.14.2.10 SMB2_CREATE_RESPONSE_LEASE, 2.2.14.2.11
//! SMB2_CREATE_RESPONSE_LEASE_V2). Request and response share one layout per version, so one
//! type carries both; the context name is `RqLs` either way and the version is told apart by
//! the data length (32 or 52 bytes). The lease break messages are in `oplock_break`.

use super::create::{context_names, CreateContext};
use crate::codec::{DecodeError, InvalidReason, Reader, Writer};

/// A lease key (2.2.13.2.8): 16 bytes the client chooses, shared by the opens of one lease.
pub type LeaseKey = [u8; 16];

/// LeaseState bits (2.2.13.2.8).
pub mod lease_state {
    /// SMB2_LEASE_NONE: no caching.
    pub const NONE: u32 = 0x00;
    /// SMB2_LEASE_READ_CACHING (R).
    pub const READ_CACHING: u32 = 0x01;
    /// SMB2_LEASE_HANDLE_CACHING (H).
    pub const HANDLE_CACHING: u32 = 0x02;
    /// SMB2_LEASE_WRITE_CACHING (W).
    pub const WRITE_CACHING: u32 = 0x04;
    /// Every defined bit (R|H|W).
    pub const ALL: u32 = READ_CACHING | HANDLE_CACHING | WRITE_CACHING;
}

/// LeaseFlags / Flags bits (2.2.13.2.10, 2.2.14.2.10, 2.2.14.2.11).
pub mod lease_flags {
    /// SMB2_LEASE_FLAG_BREAK_IN_PROGRESS (response): a break of this lease is under way.
    pub const BREAK_IN_PROGRESS: u32 = 0x02;
    /// SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET (v2): ParentLeaseKey is meaningful.
    pub const PARENT_LEASE_KEY_SET: u32 = 0x04;
}

/// The fields only version 2 carries (2.2.13.2.10, 2.2.14.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseV2 {
    /// ParentLeaseKey: the lease key of the parent directory's lease, when
    /// `PARENT_LEASE_KEY_SET` is in the flags.
    pub parent_key: LeaseKey,
    /// Epoch: incremented by the server each time the lease state changes.
    pub epoch: u16,
}

/// An `RqLs` create context's data, request or response, version 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseContext {
    /// LeaseKey.
    pub key: LeaseKey,
    /// LeaseState: `lease_state` bits requested (request) or granted (response).
    pub state: u32,
    /// LeaseFlags (v1) / Flags (v2): `lease_flags` bits.
    pub flags: u32,
    /// LeaseDuration: reserved, 0.
    pub duration: u64,
    /// The version 2 fields; `None` for version 1.
    pub v2: Option<LeaseV2>,
}

impl LeaseContext {
    /// Data length of a version 1 context.
    pub const V1_LEN: usize = 32;
    /// Data length of a version 2 context.
    pub const V2_LEN: usize = 52;

    /// The lease version, 1 or 2.
    pub fn version(&self) -> u8 {
        if self.v2.is_some() {
            2
        } else {
            1
        }
    }

    /// Appends the wire form (32 or 52 bytes) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.key);
        out.put_u32(self.state);
        out.put_u32(self.flags);
        out.put_u64(self.duration);
        if let Some(v2) = &self.v2 {
            out.put_bytes(&v2.parent_key);
            out.put_u16(v2.epoch);
            out.put_u16(0);
        }
    }

    /// Parses a context's data. The length picks the version, as Samba does
    /// (`smb2_lease_pull`): 32 bytes is version 1, 52 is version 2, anything else is an error
    /// (the server fails such a CREATE with STATUS_INVALID_PARAMETER).
    pub fn read(data: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "lease context";
        if data.len() != Self::V1_LEN && data.len() != Self::V2_LEN {
            return Err(DecodeError::invalid(
                W,
                InvalidReason::NotOneOf {
                    found: data.len(),
                    allowed: &[Self::V1_LEN, Self::V2_LEN],
                },
            ));
        }
        let mut r = Reader::new(data);
        let key = r.array::<16>(W)?;
        let state = r.u32(W)?;
        let flags = r.u32(W)?;
        let duration = r.u64(W)?;
        let v2 = if data.len() == Self::V2_LEN {
            let parent_key = r.array::<16>(W)?;
            let epoch = r.u16(W)?;
            r.skip(2, W)?; // Reserved
            Some(LeaseV2 { parent_key, epoch })
        } else {
            None
        };
        Ok(LeaseContext {
            key,
            state,
            flags,
            duration,
            v2,
        })
    }

    /// This lease as an `RqLs` create context.
    pub fn to_context(&self) -> CreateContext {
        let mut data = Vec::with_capacity(Self::V2_LEN);
        self.encode(&mut data);
        CreateContext::new(context_names::REQUEST_LEASE, data)
    }

    /// The first `RqLs` context of `contexts`, parsed; `None` when there is none.
    pub fn find(contexts: &[CreateContext]) -> Option<Result<Self, DecodeError>> {
        super::create::find_context(contexts, context_names::REQUEST_LEASE)
            .map(|c| Self::read(&c.data))
    }
}

/// Formats a lease state as Windows tools do: "RWH", "RH", "R", "" for none.
pub fn lease_state_letters(state: u32) -> String {
    let mut s = String::new();
    if state & lease_state::READ_CACHING != 0 {
        s.push('R');
    }
    if state & lease_state::WRITE_CACHING != 0 {
        s.push('W');
    }
    if state & lease_state::HANDLE_CACHING != 0 {
        s.push('H');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::create::{CreateRequest, CreateResponse, OplockLevel};
    use crate::messages::test_util::{req, resp};
    use crate::messages::{build, FileId};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const KEY: LeaseKey = [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
        0x1f,
    ];
    const PARENT: LeaseKey = [
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae,
        0xaf,
    ];

    #[test]
    fn round_trip_v1_and_v2() {
        for l in [
            LeaseContext {
                key: KEY,
                state: lease_state::READ_CACHING | lease_state::HANDLE_CACHING,
                ..Default::default()
            },
            LeaseContext {
                key: KEY,
                state: lease_state::ALL,
                flags: lease_flags::PARENT_LEASE_KEY_SET | lease_flags::BREAK_IN_PROGRESS,
                duration: 0,
                v2: Some(LeaseV2 {
                    parent_key: PARENT,
                    epoch: 0xBEEF,
                }),
            },
        ] {
            let mut v = Vec::new();
            l.encode(&mut v);
            assert_eq!(v.len(), if l.version() == 1 { 32 } else { 52 }, "{l:?}");
            assert_eq!(LeaseContext::read(&v).unwrap(), l);
            // Inside a CREATE request and response, beside another context.
            let contexts = vec![
                CreateContext::new(context_names::QUERY_MAXIMAL_ACCESS, vec![]),
                l.to_context(),
            ];
            let r = CreateRequest {
                name: "f".into(),
                requested_oplock_level: OplockLevel::LEASE,
                contexts: contexts.clone(),
                ..Default::default()
            };
            let back =
                CreateRequest::read(&build(&req(crate::header::Command::CREATE), &r)).unwrap();
            assert_eq!(LeaseContext::find(&back.contexts).unwrap().unwrap(), l);
            let r = CreateResponse {
                oplock_level: OplockLevel::LEASE,
                file_id: FileId {
                    persistent: 1,
                    volatile: 2,
                },
                contexts,
                ..Default::default()
            };
            let back =
                CreateResponse::read(&build(&resp(crate::header::Command::CREATE), &r)).unwrap();
            assert_eq!(LeaseContext::find(&back.contexts).unwrap().unwrap(), l);
        }
    }

    #[test]
    fn bad_lengths_are_errors() {
        for n in [0, 31, 33, 51, 53, 64] {
            assert!(LeaseContext::read(&vec![0; n]).is_err(), "{n}");
        }
        assert!(LeaseContext::find(&[]).is_none());
    }

    /// Bytes packed by independent implementations: smbprotocol 1.17.0
    /// (`create_contexts.SMB2CreateRequestLease`, `SMB2CreateRequestLeaseV2`,
    /// `SMB2CreateResponseLeaseV2`) with the field values below.
    #[test]
    fn decodes_smbprotocol_bytes() {
        let v1 = hex("101112131415161718191a1b1c1d1e1f03000000000000000000000000000000");
        assert_eq!(
            LeaseContext::read(&v1).unwrap(),
            LeaseContext {
                key: KEY,
                state: 3,
                flags: 0,
                duration: 0,
                v2: None
            }
        );
        let v2req = hex(concat!(
            "101112131415161718191a1b1c1d1e1f07000000040000000000000000000000",
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf03000000"
        ));
        let l = LeaseContext::read(&v2req).unwrap();
        assert_eq!(
            l,
            LeaseContext {
                key: KEY,
                state: lease_state::ALL,
                flags: lease_flags::PARENT_LEASE_KEY_SET,
                duration: 0,
                v2: Some(LeaseV2 {
                    parent_key: PARENT,
                    epoch: 3
                })
            }
        );
        let mut again = Vec::new();
        l.encode(&mut again);
        assert_eq!(again, v2req);
        let v2resp = hex(concat!(
            "101112131415161718191a1b1c1d1e1f05000000060000000000000000000000",
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf04000000"
        ));
        let l = LeaseContext::read(&v2resp).unwrap();
        assert_eq!(
            l.state,
            lease_state::READ_CACHING | lease_state::WRITE_CACHING
        );
        assert_eq!(
            l.flags,
            lease_flags::BREAK_IN_PROGRESS | lease_flags::PARENT_LEASE_KEY_SET
        );
        assert_eq!(l.v2.unwrap().epoch, 4);
        assert_eq!(lease_state_letters(l.state), "RW");
        assert_eq!(lease_state_letters(lease_state::ALL), "RWH");
    }
}
