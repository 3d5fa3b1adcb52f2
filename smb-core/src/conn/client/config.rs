//! `ClientConfig`: the client's settings (LanmanWorkstation, in Windows terms), with the
//! clock and the random source the state machine uses.

use std::sync::Arc;

use crate::auth::Credentials;
use crate::env::{self, Clock, Random};
use crate::header::Dialect;
use crate::policy::SigningPolicy;
use crate::signing::Algorithm;

/// The client's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Dialects offered in NEGOTIATE, in any order (the server picks the highest it knows).
    pub dialects: Vec<Dialect>,
    /// RequireSecuritySignature / EnableSecuritySignature.
    pub signing: SigningPolicy,
    /// 3.1.1 SIGNING_CAPABILITIES, in preference order. Empty: the context is not sent and
    /// 3.1.1 signs with AES-CMAC.
    pub signing_algorithms: Vec<Algorithm>,
    /// Who to authenticate as (NTLMv2 inside SPNEGO), unless
    /// [`session_setup_with`](super::ClientConnection::session_setup_with) brings its own
    /// mechanism.
    pub credentials: Credentials,
    /// The server as the user named it (host or host:port): used in audit events.
    pub server_name: String,
    /// Connection.ClientGuid; drawn from `random` by the constructors.
    pub client_guid: [u8; 16],
    /// The time NTLM puts in its response when the server sent none.
    pub clock: Arc<dyn Clock>,
    /// The preauth salt and the NTLM client challenge and session key come from here.
    pub random: Arc<dyn Random>,
}

impl ClientConfig {
    /// Every dialect, signing required (the Windows 11 24H2 default), GMAC then CMAC then
    /// HMAC for 3.1.1, the system clock and the OS random generator, a random ClientGuid.
    pub fn new(server_name: &str, credentials: Credentials) -> Self {
        Self::with_sources(
            server_name,
            credentials,
            env::system_clock(),
            env::os_random(),
        )
    }

    /// Like [`new`](Self::new), with this clock and random source (a
    /// [`FixedClock`](crate::env::FixedClock) and a
    /// [`SeededRandom`](crate::env::SeededRandom) make every byte reproducible).
    pub fn with_sources(
        server_name: &str,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        let mut client_guid = [0u8; 16];
        // A GUID needs no secrecy; an all-zero one still works if randomness fails.
        let _ = random.fill(&mut client_guid);
        ClientConfig {
            dialects: Dialect::ALL.to_vec(),
            signing: SigningPolicy::REQUIRED,
            signing_algorithms: vec![
                Algorithm::AesGmac,
                Algorithm::AesCmac,
                Algorithm::HmacSha256,
            ],
            credentials,
            server_name: server_name.into(),
            client_guid,
            clock,
            random,
        }
    }

    /// Offers every dialect up to and including `max`.
    pub fn max_dialect(mut self, max: Dialect) -> Self {
        self.dialects = Dialect::ALL.iter().copied().filter(|d| *d <= max).collect();
        self
    }

    /// Offers exactly one dialect.
    pub fn only_dialect(mut self, dialect: Dialect) -> Self {
        self.dialects = vec![dialect];
        self
    }
}
