//! NTLMSSP (MS-NLMP): the three messages, the NTLMv2 computations, a client and a server.
//!
//! Everything here is sans-IO and deterministic: time (a Windows FILETIME) and randomness
//! (client challenge, server challenge, random session key) are parameters, so the
//! MS-NLMP 4.2.4 examples are tests. [`super::ClientAuth`] and [`super::ServerAuth`] add the
//! SPNEGO and draw these from a [`crate::env::Clock`] and a [`crate::env::Random`].
//!
//! Only NTLMv2 is spoken: NTLMv1 and LM responses are rejected by the server and never sent
//! by the client (the hardening guides require "Send NTLMv2 response only. Refuse LM & NTLM").
//!
//! One job per file: `messages.rs` (the wire format), `crypto.rs` (the NTLMv2 computations and
//! session security), `credentials.rs` (who authenticates), `client.rs` and `server.rs` (the
//! two roles). Their public items are all re-exported here, so a caller names them
//! `auth::ntlm::Item`.

mod client;
mod credentials;
mod crypto;
mod messages;
mod server;

pub use client::{ClientAuthenticate, ClientInputs, NtlmClient};
pub use credentials::{Credentials, Secret, UserTable};
pub use crypto::*;
pub use messages::*;
pub use server::{NtlmServer, ServerIdentity, ServerPolicy, ServerVerified};

/// Every NTLMSSP message starts with this (MS-NLMP 2.2.1).
pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// MessageType of NEGOTIATE_MESSAGE.
pub const NEGOTIATE_TYPE: u32 = 1;
/// MessageType of CHALLENGE_MESSAGE.
pub const CHALLENGE_TYPE: u32 = 2;
/// MessageType of AUTHENTICATE_MESSAGE.
pub const AUTHENTICATE_TYPE: u32 = 3;
/// Where the MIC sits in an AUTHENTICATE_MESSAGE that carries one (MS-NLMP 2.2.1.3).
pub const MIC_OFFSET: usize = 72;

/// NEGOTIATE flags (MS-NLMP 2.2.2.5).
pub mod flags {
    /// NTLMSSP_NEGOTIATE_UNICODE: strings are UTF-16LE.
    pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
    /// NTLM_NEGOTIATE_OEM: OEM strings.
    pub const NEGOTIATE_OEM: u32 = 0x0000_0002;
    /// NTLMSSP_REQUEST_TARGET: TargetName wanted in the CHALLENGE.
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    /// NTLMSSP_NEGOTIATE_SIGN: message integrity.
    pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
    /// NTLMSSP_NEGOTIATE_SEAL: message confidentiality.
    pub const NEGOTIATE_SEAL: u32 = 0x0000_0020;
    /// NTLMSSP_NEGOTIATE_DATAGRAM: connectionless NTLM.
    pub const NEGOTIATE_DATAGRAM: u32 = 0x0000_0040;
    /// NTLMSSP_NEGOTIATE_LM_KEY: LAN Manager session key (never used here).
    pub const NEGOTIATE_LM_KEY: u32 = 0x0000_0080;
    /// NTLMSSP_NEGOTIATE_NTLM: NTLM v1 session security.
    pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
    /// NTLMSSP_NEGOTIATE_ANONYMOUS: an anonymous connection.
    pub const NEGOTIATE_ANONYMOUS: u32 = 0x0000_0800;
    /// NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED.
    pub const NEGOTIATE_OEM_DOMAIN_SUPPLIED: u32 = 0x0000_1000;
    /// NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED.
    pub const NEGOTIATE_OEM_WORKSTATION_SUPPLIED: u32 = 0x0000_2000;
    /// NTLMSSP_NEGOTIATE_ALWAYS_SIGN.
    pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
    /// NTLMSSP_TARGET_TYPE_DOMAIN: TargetName is a domain.
    pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    /// NTLMSSP_TARGET_TYPE_SERVER: TargetName is a server.
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    /// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY (NTLM2 session security).
    pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    /// NTLMSSP_NEGOTIATE_IDENTIFY: an identify-level token.
    pub const NEGOTIATE_IDENTIFY: u32 = 0x0010_0000;
    /// NTLMSSP_REQUEST_NON_NT_SESSION_KEY.
    pub const REQUEST_NON_NT_SESSION_KEY: u32 = 0x0040_0000;
    /// NTLMSSP_NEGOTIATE_TARGET_INFO: the CHALLENGE carries TargetInfo.
    pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
    /// NTLMSSP_NEGOTIATE_VERSION: the Version field is present.
    pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
    /// NTLMSSP_NEGOTIATE_128: 128-bit session keys.
    pub const NEGOTIATE_128: u32 = 0x2000_0000;
    /// NTLMSSP_NEGOTIATE_KEY_EXCH: the client sends an encrypted random session key.
    pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
    /// NTLMSSP_NEGOTIATE_56: 56-bit encryption.
    pub const NEGOTIATE_56: u32 = 0x8000_0000;

    /// What a Windows client asks for in its NEGOTIATE_MESSAGE.
    pub const CLIENT_DEFAULT: u32 = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_SIGN
        | NEGOTIATE_SEAL
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION
        | NEGOTIATE_128
        | NEGOTIATE_KEY_EXCH
        | NEGOTIATE_56;
}

/// AV_PAIR identifiers (MS-NLMP 2.2.2.1).
pub mod av {
    /// MsvAvEOL: the end of the list.
    pub const EOL: u16 = 0;
    /// MsvAvNbComputerName.
    pub const NB_COMPUTER_NAME: u16 = 1;
    /// MsvAvNbDomainName.
    pub const NB_DOMAIN_NAME: u16 = 2;
    /// MsvAvDnsComputerName.
    pub const DNS_COMPUTER_NAME: u16 = 3;
    /// MsvAvDnsDomainName.
    pub const DNS_DOMAIN_NAME: u16 = 4;
    /// MsvAvDnsTreeName.
    pub const DNS_TREE_NAME: u16 = 5;
    /// MsvAvFlags (bit 0x2: the AUTHENTICATE carries a MIC).
    pub const FLAGS: u16 = 6;
    /// MsvAvTimestamp (FILETIME).
    pub const TIMESTAMP: u16 = 7;
    /// MsvAvSingleHost.
    pub const SINGLE_HOST: u16 = 8;
    /// MsvAvTargetName (an SPN such as `cifs/host`).
    pub const TARGET_NAME: u16 = 9;
    /// MsvAvChannelBindings.
    pub const CHANNEL_BINDINGS: u16 = 10;

    /// MsvAvFlags bit: the AUTHENTICATE_MESSAGE carries a MIC.
    pub const FLAG_MIC_PRESENT: u32 = 0x0000_0002;
}
