//! Security descriptors: what QUERY_INFO carries with InfoType SECURITY, a minimal
//! self-relative SECURITY_DESCRIPTOR with its SIDs and ACEs (MS-DTYP 2.4).

use std::fmt;

use crate::codec::{slice_at, DecodeError, InvalidReason, Reader, Writer};
use crate::messages::len_u32;

/// AdditionalInformation bits of a SECURITY query (MS-SMB2 2.2.37).
pub mod security_information {
    /// AdditionalInformation bits of a SECURITY query: `OWNER` = 0x0000_0001 (MS-SMB2 2.2.37).
    pub const OWNER: u32 = 0x0000_0001;
    /// AdditionalInformation bits of a SECURITY query: `GROUP` = 0x0000_0002 (MS-SMB2 2.2.37).
    pub const GROUP: u32 = 0x0000_0002;
    /// AdditionalInformation bits of a SECURITY query: `DACL` = 0x0000_0004 (MS-SMB2 2.2.37).
    pub const DACL: u32 = 0x0000_0004;
    /// AdditionalInformation bits of a SECURITY query: `SACL` = 0x0000_0008 (MS-SMB2 2.2.37).
    pub const SACL: u32 = 0x0000_0008;
}

/// A security identifier (MS-DTYP 2.4.2).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sid {
    /// IdentifierAuthority (MS-DTYP 2.4.2): 48-bit authority (5 = NT AUTHORITY).
    pub identifier_authority: u64,
    /// SubAuthority values (MS-DTYP 2.4.2), the last usually the RID.
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// S-1-1-0, Everyone.
    pub fn everyone() -> Sid {
        Sid {
            identifier_authority: 1,
            sub_authorities: vec![0],
        }
    }
    /// S-1-5-32-544, BUILTIN\Administrators.
    pub fn builtin_administrators() -> Sid {
        Sid {
            identifier_authority: 5,
            sub_authorities: vec![32, 544],
        }
    }
    /// S-1-5-18, Local System.
    pub fn local_system() -> Sid {
        Sid {
            identifier_authority: 5,
            sub_authorities: vec![18],
        }
    }

    /// Parses the "S-1-5-21-..." form.
    pub fn parse(s: &str) -> Option<Sid> {
        let mut parts = s.strip_prefix("S-1-")?.split('-');
        let identifier_authority = parts.next()?.parse().ok()?;
        let sub_authorities: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
        (sub_authorities.len() <= 15).then_some(Sid {
            identifier_authority,
            sub_authorities,
        })
    }

    /// Length of the wire form: 8 bytes plus 4 per sub-authority.
    pub fn encoded_len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1); // Revision
        out.put_u8(self.sub_authorities.len() as u8);
        out.put_bytes(&self.identifier_authority.to_be_bytes()[2..]);
        for s in &self.sub_authorities {
            out.put_u32(*s);
        }
    }

    /// Reads the wire form from `r`.
    pub fn read(r: &mut Reader) -> Result<Sid, DecodeError> {
        const W: &str = "SID";
        let revision = r.u8(W)?;
        if revision != 1 {
            return Err(DecodeError::invalid(
                W,
                InvalidReason::Revision { found: revision },
            ));
        }
        let count = r.u8(W)?;
        let auth = r.array::<6>(W)?;
        let mut a = [0u8; 8];
        a[2..].copy_from_slice(&auth);
        let sub_authorities = (0..count).map(|_| r.u32(W)).collect::<Result<_, _>>()?;
        Ok(Sid {
            identifier_authority: u64::from_be_bytes(a),
            sub_authorities,
        })
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-1-{}", self.identifier_authority)?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One ACCESS_ALLOWED/ACCESS_DENIED ACE (MS-DTYP 2.4.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// 0 = ACCESS_ALLOWED, 1 = ACCESS_DENIED.
    pub ace_type: u8,
    /// AceFlags (MS-DTYP 2.4.4.1): inheritance bits.
    pub ace_flags: u8,
    /// Mask (MS-DTYP 2.4.4.2): the access rights allowed or denied.
    pub mask: u32,
    /// Sid (MS-DTYP 2.4.4.2): the trustee.
    pub sid: Sid,
}

/// A parsed self-relative security descriptor (the parts we build).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityDescriptor {
    /// Control (MS-DTYP 2.4.6): `sd_control` bits; SELF_RELATIVE is always set on the wire.
    pub control: u16,
    /// OwnerSid (MS-DTYP 2.4.6), if present.
    pub owner: Option<Sid>,
    /// GroupSid (MS-DTYP 2.4.6), if present.
    pub group: Option<Sid>,
    /// `None` when no DACL is present.
    pub dacl: Option<Vec<Ace>>,
}

/// SECURITY_DESCRIPTOR Control bits (MS-DTYP 2.4.6).
pub mod sd_control {
    /// SECURITY_DESCRIPTOR Control bits: `DACL_PRESENT` = 0x0004 (MS-DTYP 2.4.6).
    pub const DACL_PRESENT: u16 = 0x0004;
    /// SECURITY_DESCRIPTOR Control bits: `SELF_RELATIVE` = 0x8000 (MS-DTYP 2.4.6).
    pub const SELF_RELATIVE: u16 = 0x8000;
}

impl SecurityDescriptor {
    /// The descriptor a simple share hands out: the given owner and group, and a DACL that
    /// grants Everyone full access. Only the parts named in `additional_information`
    /// (OWNER/GROUP/DACL bits) are included, as a SECURITY query asks.
    pub fn everyone_full_access(owner: Sid, group: Sid, additional_information: u32) -> Self {
        use security_information as si;
        SecurityDescriptor {
            control: sd_control::SELF_RELATIVE
                | if additional_information & si::DACL != 0 {
                    sd_control::DACL_PRESENT
                } else {
                    0
                },
            owner: (additional_information & si::OWNER != 0).then_some(owner),
            group: (additional_information & si::GROUP != 0).then_some(group),
            dacl: (additional_information & si::DACL != 0).then(|| {
                vec![Ace {
                    ace_type: 0,
                    ace_flags: 0,
                    mask: 0x001F_01FF,
                    sid: Sid::everyone(),
                }]
            }),
        }
    }

    /// Self-relative encoding: 20-byte header, then owner, group, DACL.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.put_u8(1); // Revision
        out.put_u8(0);
        out.put_u16(self.control | sd_control::SELF_RELATIVE);
        out.put_zeros(16); // OffsetOwner, OffsetGroup, OffsetSacl, OffsetDacl
        if let Some(owner) = &self.owner {
            let off = out.len() - base;
            out.patch_u32(base + 4, len_u32(off));
            owner.encode(out);
        }
        if let Some(group) = &self.group {
            let off = out.len() - base;
            out.patch_u32(base + 8, len_u32(off));
            group.encode(out);
        }
        if let Some(aces) = &self.dacl {
            let off = out.len() - base;
            out.patch_u32(base + 16, len_u32(off));
            let acl_at = out.len();
            out.put_u8(2); // AclRevision
            out.put_u8(0);
            out.put_u16(0); // AclSize, patched below
            out.put_u16(aces.len() as u16);
            out.put_u16(0);
            for ace in aces {
                out.put_u8(ace.ace_type);
                out.put_u8(ace.ace_flags);
                out.put_u16((8 + ace.sid.encoded_len()) as u16);
                out.put_u32(ace.mask);
                ace.sid.encode(out);
            }
            let size = (out.len() - acl_at) as u16;
            out.patch_u16(acl_at + 2, size);
        }
    }

    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "SECURITY_DESCRIPTOR";
        let mut r = Reader::new(buf);
        let revision = r.u8(W)?;
        if revision != 1 {
            return Err(DecodeError::invalid(
                W,
                InvalidReason::Revision { found: revision },
            ));
        }
        r.skip(1, W)?;
        let control = r.u16(W)?;
        let owner_off = r.u32(W)? as usize;
        let group_off = r.u32(W)? as usize;
        let _sacl_off = r.u32(W)?;
        let dacl_off = r.u32(W)? as usize;
        let sid_at = |off: usize| -> Result<Option<Sid>, DecodeError> {
            if off == 0 {
                return Ok(None);
            }
            let rest = slice_at(buf, off, buf.len().saturating_sub(off), W)?;
            Sid::read(&mut Reader::new(rest)).map(Some)
        };
        let owner = sid_at(owner_off)?;
        let group = sid_at(group_off)?;
        let dacl = if control & sd_control::DACL_PRESENT != 0 && dacl_off != 0 {
            // ACL header (MS-DTYP 2.4.5): AclRevision, Sbz1, AclSize, AceCount, Sbz2.
            let mut head = Reader::new(slice_at(buf, dacl_off, 8, W)?);
            head.skip(2, W)?;
            let size = usize::from(head.u16(W)?);
            let count = head.u16(W)?;
            let acl = slice_at(buf, dacl_off, size, W)?;
            let mut r = Reader::new(acl);
            r.skip(8, W)?;
            let mut aces = Vec::new();
            for _ in 0..count {
                let ace_type = r.u8(W)?;
                let ace_flags = r.u8(W)?;
                let ace_size = usize::from(r.u16(W)?);
                let body = r.take(ace_size.saturating_sub(4), W)?;
                let mut b = Reader::new(body);
                let mask = b.u32(W)?;
                let sid = Sid::read(&mut b)?;
                aces.push(Ace {
                    ace_type,
                    ace_flags,
                    mask,
                    sid,
                });
            }
            Some(aces)
        } else {
            None
        };
        Ok(SecurityDescriptor {
            control,
            owner,
            group,
            dacl,
        })
    }
}
