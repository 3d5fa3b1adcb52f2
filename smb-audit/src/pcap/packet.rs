//! From a captured frame to a TCP segment: Ethernet (with VLAN tags), Linux cooked (SLL and
//! SLL2), BSD loopback/null, raw IP; IPv4 (unfragmented) and IPv6 (common extension headers).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use pcap_file::DataLink;

/// One TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

/// Whether this module reads `link`.
pub fn supported(link: DataLink) -> bool {
    matches!(
        link,
        DataLink::ETHERNET
            | DataLink::LINUX_SLL
            | DataLink::LINUX_SLL2
            | DataLink::NULL
            | DataLink::LOOP
            | DataLink::RAW
            | DataLink::IPV4
            | DataLink::IPV6
    )
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The IP packet inside a frame of `link`, with its ethertype.
fn network(link: DataLink, frame: &[u8]) -> Option<(u16, &[u8])> {
    match link {
        DataLink::ETHERNET => {
            let mut at = 12;
            let mut ty = be16(frame, at)?;
            // 802.1Q / 802.1ad tags.
            while ty == 0x8100 || ty == 0x88A8 {
                at += 4;
                ty = be16(frame, at)?;
            }
            Some((ty, frame.get(at + 2..)?))
        }
        DataLink::LINUX_SLL => Some((be16(frame, 14)?, frame.get(16..)?)),
        DataLink::LINUX_SLL2 => Some((be16(frame, 0)?, frame.get(20..)?)),
        DataLink::NULL | DataLink::LOOP => {
            // The address family in host (NULL) or network (LOOP) order; 2 is AF_INET, the
            // IPv6 value differs by OS (10, 24, 28, 30): decide by the IP version nibble.
            let ip = frame.get(4..)?;
            Some((version_type(ip)?, ip))
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Some((version_type(frame)?, frame)),
        _ => None,
    }
}

fn version_type(ip: &[u8]) -> Option<u16> {
    match ip.first()? >> 4 {
        4 => Some(ETHERTYPE_IPV4),
        6 => Some(ETHERTYPE_IPV6),
        _ => None,
    }
}

/// The TCP segment in `frame`, if it carries one.
pub fn tcp_segment(link: DataLink, frame: &[u8]) -> Option<Segment<'_>> {
    let (ty, ip) = network(link, frame)?;
    let (src, dst, tcp) = match ty {
        ETHERTYPE_IPV4 => {
            let ihl = usize::from(ip.first()? & 0x0F) * 4;
            let total = usize::from(be16(ip, 2)?);
            let frag = be16(ip, 6)?;
            // Fragments (MF set or an offset) are not reassembled: SMB over TCP on a LAN
            // does not fragment (DF and path MTU discovery).
            if ihl < 20 || *ip.get(9)? != 6 || frag & 0x3FFF != 0 {
                return None;
            }
            let end = total.clamp(ihl, ip.len());
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                ip.get(ihl..end)?,
            )
        }
        ETHERTYPE_IPV6 => {
            let payload_len = usize::from(be16(ip, 4)?);
            let mut next = *ip.get(6)?;
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + payload_len).min(ip.len());
            let mut at = 40;
            // Hop-by-hop, routing, destination options: skip; a fragment header: give up.
            while matches!(next, 0 | 43 | 60) {
                next = *ip.get(at)?;
                at += (usize::from(*ip.get(at + 1)?) + 1) * 8;
            }
            if next != 6 {
                return None;
            }
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                ip.get(at..end.max(at))?,
            )
        }
        _ => return None,
    };
    let sport = be16(tcp, 0)?;
    let dport = be16(tcp, 2)?;
    let seq = be32(tcp, 4)?;
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    if offset < 20 {
        return None;
    }
    Some(Segment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq,
        syn: flags & 0x02 != 0,
        fin: flags & 0x01 != 0,
        rst: flags & 0x04 != 0,
        payload: tcp.get(offset..)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 + TCP header around `payload`.
    pub fn ipv4_tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ];
        let total = (20 + 20 + payload.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        ip.extend_from_slice(&tcp);
        ip.extend_from_slice(payload);
        ip
    }

    #[test]
    fn every_link_type_yields_the_segment() {
        let ip = ipv4_tcp(50000, 445, 7, 0x18, b"data");
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0, 1, 0x08, 0x00]); // one VLAN tag
        eth.extend_from_slice(&ip);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&ip);
        for (link, frame) in [
            (DataLink::ETHERNET, &eth),
            (DataLink::LINUX_SLL, &sll),
            (DataLink::LINUX_SLL2, &sll2),
            (DataLink::NULL, &null),
            (DataLink::RAW, &ip),
        ] {
            let s = tcp_segment(link, frame).unwrap_or_else(|| panic!("{link:?}"));
            assert_eq!(s.src.to_string(), "127.0.0.1:50000");
            assert_eq!(s.dst.port(), 445);
            assert_eq!(s.seq, 7);
            assert_eq!(s.payload, b"data");
        }
        assert!(tcp_segment(DataLink::ETHERNET, &eth[..20]).is_none());
        assert!(!supported(DataLink::IEEE802_11));
    }

    #[test]
    fn ipv6() {
        let mut ip = vec![0x60, 0, 0, 0, 0, 24, 6, 64];
        ip.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        ip.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let v4 = ipv4_tcp(1, 139, 9, 0x02, b"abcd");
        ip.extend_from_slice(&v4[20..]);
        let s = tcp_segment(DataLink::RAW, &ip).unwrap();
        assert_eq!(s.src.to_string(), "[::1]:1");
        assert!(s.syn);
        assert_eq!(s.payload, b"abcd");
    }
}
