//! The NTLMv2 server: CHALLENGE_MESSAGE from NEGOTIATE_MESSAGE, then verification of the
//! AUTHENTICATE_MESSAGE against the user table (MS-NLMP 3.2.5).

use std::sync::Arc;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::crypto::*;
use super::messages::*;
use super::{av, flags, UserTable};
use crate::auth::{AuthError, AuthOutcome, LogonFailure, SessionKey};
use crate::codec::{DecodeError, InvalidReason};

/// The names the server puts in its CHALLENGE target info (MS-NLMP 2.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// NetBIOS domain name (MsvAvNbDomainName).
    pub nb_domain: String,
    /// NetBIOS computer name (MsvAvNbComputerName).
    pub nb_computer: String,
    /// DNS domain name (MsvAvDnsDomainName).
    pub dns_domain: String,
    /// DNS computer name (MsvAvDnsComputerName).
    pub dns_computer: String,
}

impl Default for ServerIdentity {
    fn default() -> Self {
        ServerIdentity {
            nb_domain: "WORKGROUP".into(),
            nb_computer: "SMBRS".into(),
            dns_domain: "workgroup".into(),
            dns_computer: "smbrs".into(),
        }
    }
}

/// The server's policy: the user table and which fallbacks are allowed.
#[derive(Debug, Clone)]
pub struct ServerPolicy {
    /// The accounts.
    pub users: Arc<UserTable>,
    /// Unknown user names log on as guest (Samba's "map to guest = bad user").
    pub allow_guest: bool,
    /// Accept anonymous AUTHENTICATE messages (null sessions).
    pub allow_anonymous: bool,
    /// The names put in the CHALLENGE's target info.
    pub identity: ServerIdentity,
}

/// What the server concluded from an AUTHENTICATE_MESSAGE.
#[derive(Debug)]
pub struct ServerVerified {
    /// Who logged on.
    pub outcome: AuthOutcome,
    /// The flags from the AUTHENTICATE_MESSAGE.
    pub flags: u32,
    /// The AUTHENTICATE carried a MIC and it verified.
    pub mic_verified: bool,
}

/// NTLMv2 server: CHALLENGE from NEGOTIATE, then verification of AUTHENTICATE.
#[derive(Debug)]
pub struct NtlmServer {
    policy: ServerPolicy,
    negotiate: Option<Vec<u8>>,
    challenge: Option<(Vec<u8>, [u8; 8])>,
}

impl NtlmServer {
    /// A server for this policy.
    pub fn new(policy: ServerPolicy) -> Self {
        NtlmServer {
            policy,
            negotiate: None,
            challenge: None,
        }
    }

    /// Answers a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE (MS-NLMP 3.2.5.1.1).
    pub fn challenge(
        &mut self,
        negotiate: &[u8],
        server_challenge: [u8; 8],
        now: u64,
    ) -> Result<Vec<u8>, AuthError> {
        if self.negotiate.is_some() {
            return Err(AuthError::UnexpectedToken("second NTLM NEGOTIATE"));
        }
        let neg = NegotiateMessage::read(negotiate)?;
        let c = neg.flags;
        let mut f =
            flags::NEGOTIATE_NTLM | flags::NEGOTIATE_TARGET_INFO | flags::TARGET_TYPE_SERVER;
        f |= if c & flags::NEGOTIATE_UNICODE != 0 {
            flags::NEGOTIATE_UNICODE
        } else {
            flags::NEGOTIATE_OEM
        };
        // Echo what we support of the client's request; LM_KEY is never granted.
        f |= c
            & (flags::REQUEST_TARGET
                | flags::NEGOTIATE_SIGN
                | flags::NEGOTIATE_SEAL
                | flags::NEGOTIATE_ALWAYS_SIGN
                | flags::NEGOTIATE_EXTENDED_SESSIONSECURITY
                | flags::NEGOTIATE_VERSION
                | flags::NEGOTIATE_128
                | flags::NEGOTIATE_56
                | flags::NEGOTIATE_KEY_EXCH);
        let id = &self.policy.identity;
        let mut info = TargetInfo::default();
        info.set_string(av::NB_DOMAIN_NAME, &id.nb_domain);
        info.set_string(av::NB_COMPUTER_NAME, &id.nb_computer);
        info.set_string(av::DNS_DOMAIN_NAME, &id.dns_domain);
        info.set_string(av::DNS_COMPUTER_NAME, &id.dns_computer);
        info.set(av::TIMESTAMP, now.to_le_bytes().to_vec());
        let msg = ChallengeMessage {
            target_name: id.nb_computer.clone(),
            flags: f,
            server_challenge,
            target_info: info,
            version: Some(Version::WINDOWS_10).filter(|_| f & flags::NEGOTIATE_VERSION != 0),
        }
        .to_bytes();
        self.negotiate = Some(negotiate.to_vec());
        self.challenge = Some((msg.clone(), server_challenge));
        Ok(msg)
    }

    /// Verifies an AUTHENTICATE_MESSAGE (MS-NLMP 3.2.5.1.2).
    pub fn authenticate(&mut self, authenticate: &[u8]) -> Result<ServerVerified, AuthError> {
        let (challenge, server_challenge) = self
            .challenge
            .take()
            .ok_or(AuthError::UnexpectedToken("AUTHENTICATE before CHALLENGE"))?;
        let negotiate = self.negotiate.take().unwrap_or_default();
        let msg = AuthenticateMessage::read(authenticate)?;
        let policy = &self.policy;

        // Anonymous: empty user, no NT response, LM response empty or Z(1).
        if msg.user.is_empty()
            && msg.nt_response.is_empty()
            && msg.lm_response.iter().all(|b| *b == 0)
            && msg.lm_response.len() <= 1
        {
            return if policy.allow_anonymous {
                Ok(ServerVerified {
                    outcome: AuthOutcome::Anonymous,
                    flags: msg.flags,
                    mic_verified: false,
                })
            } else {
                Err(AuthError::LogonFailure(LogonFailure::AnonymousNotAllowed))
            };
        }
        // NTLMv2 only: a 24-byte NT response is NTLMv1 (or NTLM2 session response).
        if msg.nt_response.len() <= 24 {
            return Err(AuthError::LogonFailure(LogonFailure::NotNtlmV2));
        }
        let Some(entry) = policy.users.lookup(&msg.user) else {
            return if policy.allow_guest {
                Ok(ServerVerified {
                    outcome: AuthOutcome::Guest,
                    flags: msg.flags,
                    mic_verified: false,
                })
            } else {
                Err(AuthError::LogonFailure(LogonFailure::UnknownUser))
            };
        };
        if let Some(d) = &entry.domain {
            if upcase(d) != upcase(&msg.domain) {
                return Err(AuthError::LogonFailure(LogonFailure::WrongDomain));
            }
        }
        let (proof, temp) = msg.nt_response.split_at(16);
        // NTLMv2_CLIENT_CHALLENGE: RespType 1, HiRespType 1 (MS-NLMP 2.2.2.7).
        if temp.len() < 28 || temp[0] != 1 || temp[1] != 1 {
            return Err(AuthError::LogonFailure(LogonFailure::NotNtlmV2));
        }
        let blob_info = TargetInfo::read(&temp[28..])?;

        // The client computed NTOWFv2 with the domain it sent; like Samba, also accept the
        // upper-cased and the empty domain (clients differ in what they hash).
        let mut candidates = vec![msg.domain.clone()];
        for d in [upcase(&msg.domain), String::new()] {
            if !candidates.contains(&d) {
                candidates.push(d);
            }
        }
        let mut matched = None;
        for domain in &candidates {
            let key = Zeroizing::new(ntowf_v2(&entry.nt_hash, &msg.user, domain));
            let expected = nt_proof_str(&key, &server_challenge, temp);
            if bool::from(expected.as_slice().ct_eq(proof)) {
                matched = Some(key);
                break;
            }
        }
        let response_key = matched.ok_or(AuthError::LogonFailure(LogonFailure::WrongPassword))?;
        let mut proof_arr = [0u8; 16];
        proof_arr.copy_from_slice(proof);
        let key_exchange_key = Zeroizing::new(session_base_key(&response_key, &proof_arr));
        let exported = if msg.flags & flags::NEGOTIATE_KEY_EXCH != 0 {
            let enc: [u8; 16] = msg
                .encrypted_session_key
                .as_slice()
                .try_into()
                .map_err(|_| {
                    AuthError::Malformed(DecodeError::invalid(
                        "NTLM AUTHENTICATE",
                        InvalidReason::KeyExchangeWithoutKey,
                    ))
                })?;
            rc4_key(&key_exchange_key, &enc)
        } else {
            *key_exchange_key
        };
        let exported = SessionKey::new(exported);

        // MS-NLMP 3.2.5.1.2: if MsvAvFlags says a MIC is present, the server MUST verify it.
        let mut mic_verified = false;
        if blob_info.flags().unwrap_or(0) & av::FLAG_MIC_PRESENT != 0 {
            let Some(mic) = msg.mic else {
                return Err(AuthError::LogonFailure(LogonFailure::BadMic));
            };
            let expected = compute_mic(exported.as_bytes(), &negotiate, &challenge, authenticate);
            if !bool::from(expected.ct_eq(&mic)) {
                return Err(AuthError::LogonFailure(LogonFailure::BadMic));
            }
            mic_verified = true;
        }
        Ok(ServerVerified {
            outcome: AuthOutcome::Authenticated {
                user: entry.name.clone(),
                domain: msg.domain.clone(),
                session_key: exported,
            },
            flags: msg.flags,
            mic_verified,
        })
    }
}
