//! The NTLMv2 client: NEGOTIATE_MESSAGE, then AUTHENTICATE_MESSAGE from the server's
//! CHALLENGE_MESSAGE (MS-NLMP 3.1.5).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto::*;
use super::messages::*;
use super::{av, flags, Credentials, MIC_OFFSET};
use crate::auth::{AuthError, SessionKey};
use crate::codec::{DecodeError, InvalidReason};
use crate::env::{Clock, Random};

/// The client's per-attempt randomness and clock, as parameters (MS-NLMP 4.2.4 uses
/// time 0, client challenge aa.., random session key 55..).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClientInputs {
    /// FILETIME used when the server sent no MsvAvTimestamp.
    pub now: u64,
    /// The client challenge in the NTLMv2 blob.
    pub client_challenge: [u8; 8],
    /// The random session key sent encrypted with KEY_EXCH.
    pub random_session_key: [u8; 16],
}

impl fmt::Debug for ClientInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInputs")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl ClientInputs {
    /// Fresh inputs from a clock and a random source.
    pub fn generate(clock: &dyn Clock, random: &dyn Random) -> Result<Self, AuthError> {
        let mut client_challenge = [0u8; 8];
        let mut random_session_key = [0u8; 16];
        random
            .fill(&mut client_challenge)
            .map_err(|_| AuthError::Random)?;
        random
            .fill(&mut random_session_key)
            .map_err(|_| AuthError::Random)?;
        Ok(ClientInputs {
            now: clock.now(),
            client_challenge,
            random_session_key,
        })
    }
}

/// What the client produced from a CHALLENGE.
#[derive(Debug)]
pub struct ClientAuthenticate {
    /// The AUTHENTICATE_MESSAGE.
    pub message: Vec<u8>,
    /// The exported session key (zeros for anonymous, which has no session security).
    pub session_key: SessionKey,
    /// The flags sent in the AUTHENTICATE_MESSAGE (the negotiated set).
    pub flags: u32,
    /// Whether the AUTHENTICATE carries a MIC (and so SPNEGO should send a mechListMIC).
    pub has_mic: bool,
}

/// NTLMv2 client: NEGOTIATE, then AUTHENTICATE from the server's CHALLENGE.
#[derive(Debug)]
pub struct NtlmClient {
    creds: Credentials,
    /// What we ask for in NEGOTIATE; KEY_EXCH in here is the key-exchange switch.
    flags: u32,
    send_mic: bool,
    target_name: Option<String>,
    negotiate: Option<Vec<u8>>,
}

/// Longest user, domain or workstation name accepted from the caller (Windows: 256).
const MAX_NAME_CHARS: usize = 256;

impl NtlmClient {
    /// A client for these credentials.
    pub fn new(creds: Credentials) -> Self {
        NtlmClient {
            creds,
            flags: flags::CLIENT_DEFAULT,
            send_mic: true,
            target_name: None,
            negotiate: None,
        }
    }

    /// KEY_EXCH on (default, as Windows) or off (the exported key is then the KeyExchangeKey).
    pub fn set_key_exchange(&mut self, on: bool) {
        if on {
            self.flags |= flags::NEGOTIATE_KEY_EXCH;
        } else {
            self.flags &= !flags::NEGOTIATE_KEY_EXCH;
        }
    }

    /// Whether to send MsvAvFlags(MIC) and the MIC (default on, as Windows).
    pub fn set_mic(&mut self, on: bool) {
        self.send_mic = on;
    }

    /// The SPN to put in MsvAvTargetName, e.g. "cifs/127.0.0.1".
    pub fn set_target_name(&mut self, spn: &str) {
        self.target_name = Some(spn.to_owned());
    }

    /// The NEGOTIATE_MESSAGE (remembered for the MIC).
    pub fn negotiate(&mut self) -> Vec<u8> {
        let msg = NegotiateMessage {
            flags: self.flags,
            domain: Vec::new(),
            workstation: Vec::new(),
            version: Some(Version::WINDOWS_10),
        }
        .to_bytes();
        self.negotiate = Some(msg.clone());
        msg
    }

    /// Builds the AUTHENTICATE_MESSAGE for `challenge` (MS-NLMP 3.1.5.1.2).
    pub fn authenticate(
        &mut self,
        challenge: &[u8],
        inputs: &ClientInputs,
    ) -> Result<ClientAuthenticate, AuthError> {
        let negotiate = self
            .negotiate
            .clone()
            .ok_or(AuthError::UnexpectedToken("CHALLENGE before NEGOTIATE"))?;
        for name in [
            &self.creds.user,
            &self.creds.domain,
            &self.creds.workstation,
        ] {
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(AuthError::InvalidCredentials(
                    "name longer than 256 characters",
                ));
            }
        }
        let chal = ChallengeMessage::read(challenge)?;
        // The negotiated set: what both sides asked for (MS-NLMP 3.1.5.1.2, 3.2.5.1.1).
        let mut negotiated = self.flags & chal.flags;
        if negotiated & flags::NEGOTIATE_UNICODE == 0 {
            negotiated |= chal.flags & flags::NEGOTIATE_OEM;
        }
        if chal.flags & flags::NEGOTIATE_VERSION == 0 {
            negotiated &= !flags::NEGOTIATE_VERSION;
        }
        negotiated |= flags::NEGOTIATE_NTLM;

        if self.creds.is_anonymous() {
            // MS-NLMP 3.1.5.1.2: anonymous sends NtChallengeResponse = Nil, LmChallengeResponse
            // = Z(1), and has no session key (so no KEY_EXCH and no MIC).
            let flags = (negotiated | flags::NEGOTIATE_ANONYMOUS) & !flags::NEGOTIATE_KEY_EXCH;
            let msg = AuthenticateMessage {
                lm_response: vec![0],
                nt_response: Vec::new(),
                domain: String::new(),
                user: String::new(),
                workstation: self.creds.workstation.clone(),
                encrypted_session_key: Vec::new(),
                flags,
                version: Some(Version::WINDOWS_10)
                    .filter(|_| flags & flags::NEGOTIATE_VERSION != 0),
                mic: None,
            };
            return Ok(ClientAuthenticate {
                message: msg.to_bytes(),
                session_key: SessionKey::new([0; 16]),
                flags,
                has_mic: false,
            });
        }

        // The NT hash is as good as the password: wipe this copy too.
        let nt_hash = Zeroizing::new(self.creds.secret.nt_hash());
        let response_key = Zeroizing::new(ntowf_v2(&nt_hash, &self.creds.user, &self.creds.domain));
        let server_time = chal.target_info.timestamp();
        let mut info = chal.target_info.clone();
        if self.send_mic {
            let av_flags = info.flags().unwrap_or(0) | av::FLAG_MIC_PRESENT;
            info.set(av::FLAGS, av_flags.to_le_bytes().to_vec());
        }
        if let Some(spn) = &self.target_name {
            info.set_string(av::TARGET_NAME, spn);
        }
        let temp = ntlmv2_client_blob(
            server_time.unwrap_or(inputs.now),
            &inputs.client_challenge,
            &info.to_bytes(),
        );
        let nt_response = ntlmv2_response(&response_key, &chal.server_challenge, &temp);
        if nt_response.len() > u16::MAX as usize {
            return Err(AuthError::Malformed(DecodeError::invalid(
                "NTLM CHALLENGE",
                InvalidReason::TooLong {
                    len: nt_response.len(),
                    max: u16::MAX as usize,
                },
            )));
        }
        let mut proof = [0u8; 16];
        proof.copy_from_slice(&nt_response[..16]);
        // MS-NLMP 3.1.5.1.2: with MsvAvTimestamp the client sends Z(24) instead of LMv2.
        let lm_response = match server_time {
            Some(_) => vec![0u8; 24],
            None => lmv2_response(
                &response_key,
                &chal.server_challenge,
                &inputs.client_challenge,
            )
            .to_vec(),
        };
        let key_exchange_key = Zeroizing::new(session_base_key(&response_key, &proof));
        let (exported, encrypted_session_key) = if negotiated & flags::NEGOTIATE_KEY_EXCH != 0 {
            let enc = rc4_key(&key_exchange_key, &inputs.random_session_key);
            (inputs.random_session_key, enc.to_vec())
        } else {
            (*key_exchange_key, Vec::new())
        };
        let exported = SessionKey::new(exported);

        let mut msg = AuthenticateMessage {
            lm_response,
            nt_response,
            domain: self.creds.domain.clone(),
            user: self.creds.user.clone(),
            workstation: self.creds.workstation.clone(),
            encrypted_session_key,
            flags: negotiated,
            version: Some(Version::WINDOWS_10)
                .filter(|_| negotiated & flags::NEGOTIATE_VERSION != 0),
            mic: self.send_mic.then_some([0u8; 16]),
        };
        let mut bytes = msg.to_bytes();
        if self.send_mic {
            let mic = compute_mic(exported.as_bytes(), &negotiate, challenge, &bytes);
            bytes[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(&mic);
            msg.mic = Some(mic);
        }
        Ok(ClientAuthenticate {
            message: bytes,
            session_key: exported,
            flags: negotiated,
            has_mic: self.send_mic,
        })
    }
}
