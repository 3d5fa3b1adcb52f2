//! Message signing and key derivation (MS-SMB2 3.1.4.1, 3.1.4.2).
//!
//! A [`SigningKey`] binds a key to its algorithm and signs or verifies whole SMB2 messages in
//! place. The MAC runs over the message as three slices (header bytes 0..48, sixteen zero
//! bytes standing in for the signature, then the rest), so nothing is copied. The key's
//! expensive parts (AES key schedule, CMAC subkeys, GHASH powers of H, HMAC's keyed inner and
//! outer states) are computed once, when the key is made, and wiped when it is dropped.
//!
//! - [`SigningKey::for_session`] derives a session's key (MS-SMB2 3.1.4.2) and binds it to
//!   the dialect's algorithm; [`must_verify`] says which received messages must carry a
//!   valid signature, [`exemption`] which never do, and why.
//! - [`SigningKey::sign_batch`] / [`SigningKey::verify_batch`] take many messages at once
//!   (AES-CMAC then runs up to 8 chains side by side).
//! - [`SigningKey::tail_digest`] / [`SigningKey::sign_with_tail`] (AES-GMAC): the MAC of a
//!   message's data taken first, where the data was just read (a READ's file data, a
//!   WRITE's local file), and the header added later.
//! - Signatures are [`Tag`]s, compared in constant time.
//! - Each algorithm also has its own standalone streaming type ([`HmacSha256`], [`AesCmac`],
//!   [`AesGmac`]); [`MessageMac`] streams one message under a `SigningKey`.
//!
//! Speed: AES runs on AES-NI and GHASH on VPCLMULQDQ or PCLMULQDQ when the CPU has them
//! (detected at run time, see [`Backend`]), with portable fallbacks.
//!
//! ```
//! use smb_core::header::{Command, Header};
//! use smb_core::signing::{Algorithm, SigningKey};
//!
//! let key = SigningKey::new(Algorithm::AesGmac, &[7; 16])?;
//! let mut message = Vec::new();
//! Header::request(Command::ECHO, 5, 0x11, 0).encode(&mut message);
//! message.extend_from_slice(&[4, 0, 0, 0]); // ECHO body
//! key.sign(&mut message)?;
//! assert!(key.verify(&message).is_ok());
//! message[66] ^= 1;
//! assert!(key.verify(&message).is_err());
//! # Ok::<(), smb_core::signing::SigningError>(())
//! ```

pub mod aes_cmac;
pub mod aes_gmac;
#[cfg(target_arch = "x86_64")]
mod aesni;
mod ghash;
pub mod hmac_sha256;
pub mod kdf;
pub mod preauth;

use std::fmt;
use std::sync::{Arc, Weak};

use subtle::ConstantTimeEq;

pub use aes_cmac::AesCmac;
pub use aes_gmac::AesGmac;
pub use ghash::Backend;
pub use hmac_sha256::HmacSha256;
pub use kdf::{derive_session_keys, kdf_counter_hmac_sha256, SessionKeys};
pub use preauth::PreauthHash;

pub use crate::enums::{Algorithm, Cipher, SigningAlgorithmId};

use aes_cmac::{CmacKey, CmacState};
use aes_gmac::{GmacKey, GmacState};
use hmac_sha256::{HmacKey, HmacState};

use crate::codec::DecodeError;
use crate::header::{
    flags, Command, Dialect, Header, NtStatus, FLAGS_OFFSET, HEADER_LEN, OPLOCK_BREAK_MESSAGE_ID,
    SIGNATURE_LEN, SIGNATURE_OFFSET,
};

/// A 16-byte SMB2 signature. Equality is constant time (`subtle`), so comparing a computed
/// tag with a received one leaks nothing about where they differ; `Debug` prints hex.
#[derive(Clone, Copy, Default)]
pub struct Tag(pub(crate) [u8; 16]);

impl Tag {
    /// The tag's bytes, as they go into the Signature field.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The tag's bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The Signature field (bytes 48..64) of a message, as a tag; `None` for a message
    /// shorter than its header.
    pub fn from_message(message: &[u8]) -> Option<Tag> {
        let field = message.get(SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN)?;
        let mut t = [0u8; 16];
        t.copy_from_slice(field);
        Some(Tag(t))
    }

    /// Constant-time comparison with bytes of any length (a length mismatch is unequal).
    pub fn matches(&self, other: &[u8]) -> bool {
        bool::from(self.0[..].ct_eq(other))
    }
}

impl From<[u8; 16]> for Tag {
    fn from(bytes: [u8; 16]) -> Self {
        Tag(bytes)
    }
}

impl From<Tag> for [u8; 16] {
    fn from(tag: Tag) -> Self {
        tag.0
    }
}

impl AsRef<[u8]> for Tag {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for Tag {
    fn eq(&self, other: &Tag) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for Tag {}

impl PartialEq<[u8; 16]> for Tag {
    fn eq(&self, other: &[u8; 16]) -> bool {
        bool::from(self.0.ct_eq(other))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Why a received message carries no signature by design, whatever its session requires
/// (MS-SMB2 3.2.5.1.3, 3.3.5.2.4): see [`exemption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exemption {
    /// An oplock or lease break notification from the server: MessageId 0xFFFFFFFFFFFFFFFF,
    /// command OPLOCK_BREAK, "not a reply to a previous request" and sent unsigned
    /// (3.2.5.1.2). A lease break also has SessionId 0.
    BreakNotification,
    /// An interim response from the server (ASYNC flag, STATUS_PENDING): the server does not
    /// sign it, and the final response that follows is verified instead (3.2.5.1.5).
    InterimResponse,
    /// SessionId 0: no session, hence no key (NEGOTIATE, the first SESSION_SETUP, ECHO
    /// before a session).
    NoSession,
}

impl Exemption {
    /// A short stable name, for logs and JSON (`"interim_pending"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Exemption::BreakNotification => "break_notification",
            Exemption::InterimResponse => "interim_pending",
            Exemption::NoSession => "no_session",
        }
    }
}

/// Whether, and why, a received message is exempt from signature verification. The break
/// and interim exemptions hold for responses only (SMB2_FLAGS_SERVER_TO_REDIR): a request
/// that looks like one (its Status field is ChannelSequence/Reserved) is not exempt.
pub fn exemption(header: &Header) -> Option<Exemption> {
    let response = header.is_response();
    if response
        && header.message_id == OPLOCK_BREAK_MESSAGE_ID
        && header.command == Command::OPLOCK_BREAK
    {
        Some(Exemption::BreakNotification)
    } else if response && header.async_id.is_some() && header.status == NtStatus::PENDING {
        Some(Exemption::InterimResponse)
    } else if header.session_id == 0 {
        Some(Exemption::NoSession)
    } else {
        None
    }
}

/// Whether a received message must carry a valid signature (MS-SMB2 3.2.5.1.3 for the
/// client, 3.3.5.2.4 for the server), given whether its session requires signing
/// (Session.SigningRequired). This is the one rule: the client and server state machines
/// both decide with it.
///
/// Exempt, whatever the session says: the messages [`exemption`] names (break
/// notifications, interim responses, SessionId 0).
///
/// Otherwise a message must be verified when its session requires signing, or when it sets
/// SMB2_FLAGS_SIGNED ("if the SMB2_FLAGS_SIGNED bit is set in the Flags field ... the
/// receiver MUST verify the signature"): the flag alone never excuses a missing signature.
///
/// `header.session_id` is the session the message belongs to: for a related request of a
/// compound chain that is the previous request's (3.3.5.2.7.2), whatever its own field holds.
pub fn must_verify(header: &Header, signing_required: bool) -> bool {
    exemption(header).is_none() && (signing_required || header.is_signed())
}

/// Why a message could not be signed or verified, or keys not derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningError {
    /// The message is shorter than a 64-byte SMB2 header.
    TooShort {
        /// The message's length.
        len: usize,
    },
    /// The key has the wrong length for the algorithm.
    KeyLength {
        /// The length the algorithm takes.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The signature in the message is not the MAC of the message.
    BadSignature,
    /// A compound chain could not be split into messages.
    Chain(DecodeError),
    /// 3.1.1 key derivation needs the preauth integrity hash as its context.
    MissingPreauthHash,
    /// The forced backend needs CPU features this machine does not have.
    BackendUnavailable(Backend),
    /// A batch call got a different number of messages and tags.
    BatchLength {
        /// Messages given.
        messages: usize,
        /// Tags given.
        tags: usize,
    },
}

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningError::TooShort { len } => {
                write!(
                    f,
                    "message of {len} bytes is shorter than the 64-byte SMB2 header"
                )
            }
            SigningError::KeyLength { expected, got } => {
                write!(f, "signing key is {got} bytes, expected {expected}")
            }
            SigningError::BadSignature => f.write_str("signature does not match the message"),
            SigningError::Chain(e) => write!(f, "compound chain: {e}"),
            SigningError::MissingPreauthHash => {
                f.write_str("SMB 3.1.1 key derivation needs the preauth integrity hash")
            }
            SigningError::BackendUnavailable(b) => {
                write!(f, "the {} backend is not available on this CPU", b.name())
            }
            SigningError::BatchLength { messages, tags } => {
                write!(f, "batch of {messages} messages but {tags} tags")
            }
        }
    }
}

impl std::error::Error for SigningError {}

impl From<DecodeError> for SigningError {
    fn from(e: DecodeError) -> Self {
        SigningError::Chain(e)
    }
}

/// The prepared key, per algorithm; each part wipes itself on drop (when the last
/// [`SigningKey`] sharing it goes).
// GMAC's 66 powers of H make that variant the largest; it sits behind the key's `Arc`.
#[allow(clippy::large_enum_variant)]
enum KeyMaterial {
    Hmac(HmacKey),
    Cmac(CmacKey),
    Gmac(GmacKey),
}

/// A signing key bound to its algorithm, prepared once (see the module docs) and reused for
/// every message. Clones share the prepared key (the server hands one to every request it
/// answers); it is zeroized when the last of them is dropped. `Debug` never prints the key.
#[derive(Clone)]
pub struct SigningKey {
    algorithm: Algorithm,
    backend: Backend,
    material: Arc<KeyMaterial>,
}

/// The MAC of a message's tail, taken ahead by [`SigningKey::tail_digest`]: for instance on
/// the thread that just read a READ response's data, while it is in that core's cache.
/// [`SigningKey::sign_with_tail`] then signs the whole message without reading the tail
/// again. AES-GMAC only (GHASH is linear; CMAC and HMAC chain from the first byte). Wiped on
/// drop.
#[derive(Clone)]
pub struct TailDigest {
    /// The key that took it (or a clone of it): held weakly, so its memory is not reused
    /// for another key while the digest exists.
    key: Weak<KeyMaterial>,
    len: usize,
    blocks: u64,
    acc: u128,
}

impl TailDigest {
    /// The length of the tail it covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for TailDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailDigest")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Drop for TailDigest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.acc);
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The streaming MAC of one message under a [`SigningKey`] (from [`SigningKey::mac`]). Feed
/// it the message with its Signature field zeroed, in any number of pieces.
#[derive(Clone)]
pub struct MessageMac<'k> {
    inner: MacState<'k>,
}

#[derive(Clone)]
enum MacState<'k> {
    Hmac(&'k HmacKey, HmacState),
    Cmac(&'k CmacKey, CmacState),
    Gmac(&'k GmacKey, GmacState),
}

impl fmt::Debug for MessageMac<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageMac { .. }")
    }
}

impl MessageMac<'_> {
    /// Feeds the next piece of the message.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            MacState::Hmac(_, st) => st.update(data),
            MacState::Cmac(k, st) => st.update(k, data),
            MacState::Gmac(k, st) => st.update(k, data),
        }
    }

    /// The signature.
    pub fn finalize(self) -> Tag {
        Tag(match self.inner {
            MacState::Hmac(k, st) => st.finalize(k),
            MacState::Cmac(k, st) => st.finalize(k),
            MacState::Gmac(k, st) => st.finalize(k),
        })
    }
}

const ZERO_SIGNATURE: [u8; SIGNATURE_LEN] = [0; SIGNATURE_LEN];

/// Feeds a message (at least 64 bytes) as header[..48], sixteen zero bytes, message[64..]:
/// MS-SMB2 3.1.4.1 signs the message with its Signature field zeroed, and this does it
/// without copying the message.
fn feed_zeroed_signature(message: &[u8], mut update: impl FnMut(&[u8])) {
    let (head, rest) = message.split_at(SIGNATURE_OFFSET.min(message.len()));
    update(head);
    update(&ZERO_SIGNATURE);
    update(rest.get(SIGNATURE_LEN..).unwrap_or_default());
}

/// Sets SMB2_FLAGS_SIGNED in a message of at least 64 bytes (the flags are covered by the MAC).
fn set_signed_flag(message: &mut [u8]) {
    let field = &mut message[FLAGS_OFFSET..FLAGS_OFFSET + 4];
    let fl = u32::from_le_bytes([field[0], field[1], field[2], field[3]]) | flags::SIGNED;
    field.copy_from_slice(&fl.to_le_bytes());
}

fn check_len(message: &[u8]) -> Result<(), SigningError> {
    if message.len() < HEADER_LEN {
        return Err(SigningError::TooShort { len: message.len() });
    }
    Ok(())
}

impl SigningKey {
    /// AES-CMAC and AES-GMAC take a 16-byte key. HMAC-SHA256 takes the session key (16 bytes
    /// in practice; any non-empty length is accepted, as HMAC allows). Runs on the fastest
    /// [`Backend`] this CPU has.
    pub fn new(algorithm: Algorithm, key: &[u8]) -> Result<Self, SigningError> {
        Self::with_backend(algorithm, key, Backend::detect())
    }

    /// Like [`SigningKey::new`], on a chosen backend (tests and benches run every path this
    /// way); fails with [`SigningError::BackendUnavailable`] when the CPU lacks its features.
    #[doc(hidden)]
    pub fn with_backend(
        algorithm: Algorithm,
        key: &[u8],
        backend: Backend,
    ) -> Result<Self, SigningError> {
        if !backend.available() {
            return Err(SigningError::BackendUnavailable(backend));
        }
        let aes_key = || -> Result<&[u8; 16], SigningError> {
            key.try_into().map_err(|_| SigningError::KeyLength {
                expected: 16,
                got: key.len(),
            })
        };
        let material = match algorithm {
            Algorithm::HmacSha256 => {
                if key.is_empty() {
                    return Err(SigningError::KeyLength {
                        expected: 16,
                        got: 0,
                    });
                }
                KeyMaterial::Hmac(HmacKey::new(key))
            }
            Algorithm::AesCmac => KeyMaterial::Cmac(CmacKey::new(aes_key()?, backend)),
            Algorithm::AesGmac => KeyMaterial::Gmac(GmacKey::new(aes_key()?, backend)),
        };
        Ok(SigningKey {
            algorithm,
            backend,
            material: Arc::new(material),
        })
    }

    /// Session.SigningKey, the same on both ends (MS-SMB2 3.2.5.3.1 client, 3.3.5.5.3
    /// server): derived from the authentication's session key for the dialect (3.1.1: with
    /// the session's preauth integrity hash as context, which is then required) and bound to
    /// the dialect's algorithm ([`Algorithm::for_dialect`]: 3.1.1 uses `negotiated`, or
    /// AES-CMAC when SMB2_SIGNING_CAPABILITIES chose none). `cipher` is the 3.1.1
    /// connection's cipher, if any: an AES-256 cipher makes the KDF's L 256 for every key
    /// (MS-SMB2 3.1.4.2). 2.x uses the session key itself with HMAC-SHA256.
    pub fn for_session(
        dialect: Dialect,
        negotiated: Option<Algorithm>,
        cipher: Option<Cipher>,
        session_key: &[u8],
        preauth_hash: Option<&[u8; 64]>,
    ) -> Result<Self, SigningError> {
        let keys = derive_session_keys(dialect, session_key, preauth_hash, cipher)?;
        SigningKey::new(Algorithm::for_dialect(dialect, negotiated), &keys.signing)
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The backend this key runs on.
    #[doc(hidden)]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A fresh streaming MAC for the message whose 64-byte header is `header`. Only GMAC
    /// reads the header (for its nonce); feed the message (Signature field zeroed) to the
    /// returned MAC yourself.
    pub fn mac(&self, header: &[u8]) -> Result<MessageMac<'_>, SigningError> {
        check_len(header)?;
        let inner = match &*self.material {
            KeyMaterial::Hmac(k) => MacState::Hmac(k, HmacState::new(k)),
            KeyMaterial::Cmac(k) => MacState::Cmac(k, CmacState::default()),
            KeyMaterial::Gmac(k) => {
                let nonce = aes_gmac::nonce_from_header(header)
                    .ok_or(SigningError::TooShort { len: header.len() })?;
                MacState::Gmac(k, GmacState::new(k, &nonce))
            }
        };
        Ok(MessageMac { inner })
    }

    /// MAC of one message (header at 0) with bytes 48..64 taken as zero, without copying it.
    /// MS-SMB2 3.1.4.1: the signature is computed over the whole message with the Signature
    /// field set to zero. The GMAC nonce comes from the header: MessageId, SERVER_TO_REDIR
    /// (role bit) and Command == CANCEL (cancel bit).
    pub fn signature(&self, message: &[u8]) -> Result<Tag, SigningError> {
        check_len(message)?;
        Ok(Tag(match &*self.material {
            KeyMaterial::Hmac(k) if message.len() <= hmac_sha256::ONE_SHOT_MAX => {
                hmac_sha256::message_tag(k, message)
            }
            KeyMaterial::Hmac(k) => {
                let mut st = HmacState::new(k);
                feed_zeroed_signature(message, |piece| st.update(piece));
                st.finalize(k)
            }
            KeyMaterial::Cmac(k) => aes_cmac::smb_cmac(k, message),
            KeyMaterial::Gmac(k) => {
                let j0 = aes_gmac::j0_from_header(message)
                    .ok_or(SigningError::TooShort { len: message.len() })?;
                aes_gmac::smb_gmac(k, message, &j0)
            }
        }))
    }

    /// Sets the SIGNED flag (the flags are covered by the MAC), then writes the signature
    /// into bytes 48..64.
    pub fn sign(&self, message: &mut [u8]) -> Result<(), SigningError> {
        check_len(message)?;
        set_signed_flag(message);
        let sig = self.signature(message)?;
        message[SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN].copy_from_slice(&sig.0);
        Ok(())
    }

    /// For an AES-GMAC key, the digest of `tail`: the last bytes of a message to be signed
    /// later with [`SigningKey::sign_with_tail`]. `None` for the other algorithms.
    ///
    /// ```
    /// use smb_core::header::{Command, Header};
    /// use smb_core::signing::{Algorithm, SigningKey};
    ///
    /// let key = SigningKey::new(Algorithm::AesGmac, &[7; 16])?;
    /// let mut message = Vec::new();
    /// Header::request(Command::WRITE, 9, 0x11, 1).encode(&mut message);
    /// message.resize(112, 0); // WRITE's fixed part; the data starts at byte 112
    /// message.extend_from_slice(&[0x5a; 3000]);
    /// // On the thread that read the data:
    /// let digest = key.tail_digest(&message[112..]).expect("a GMAC key");
    /// // Later, once the header is final:
    /// let mut whole = message.clone();
    /// key.sign_with_tail(&mut message, &digest)?;
    /// key.sign(&mut whole)?;
    /// assert_eq!(message, whole);
    /// # Ok::<(), smb_core::signing::SigningError>(())
    /// ```
    pub fn tail_digest(&self, tail: &[u8]) -> Option<TailDigest> {
        let KeyMaterial::Gmac(k) = &*self.material else {
            return None;
        };
        let (acc, blocks) = aes_gmac::tail_ghash(k, tail);
        Some(TailDigest {
            key: Arc::downgrade(&self.material),
            len: tail.len(),
            blocks,
            acc,
        })
    }

    /// [`SigningKey::sign`] for a message whose last `digest.len()` bytes this key (or a
    /// clone) digested, unchanged since, with [`SigningKey::tail_digest`]: only the head is
    /// read. When the digest cannot serve (another key, an empty tail, or a tail that does
    /// not start on a 16-byte boundary after the 64-byte header) the whole message is
    /// hashed, as `sign` does.
    pub fn sign_with_tail(
        &self,
        message: &mut [u8],
        digest: &TailDigest,
    ) -> Result<(), SigningError> {
        check_len(message)?;
        let at = message.len().checked_sub(digest.len);
        let (KeyMaterial::Gmac(k), Some(at)) = (&*self.material, at) else {
            return self.sign(message);
        };
        let same_key = std::ptr::eq(digest.key.as_ptr(), Arc::as_ptr(&self.material));
        if !same_key || digest.blocks == 0 || at < HEADER_LEN || at % 16 != 0 {
            return self.sign(message);
        }
        set_signed_flag(message);
        let j0 = aes_gmac::j0_from_header(message)
            .ok_or(SigningError::TooShort { len: message.len() })?;
        let sig = aes_gmac::smb_gmac_with_tail(k, message, at, digest.acc, digest.blocks, &j0);
        message[SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN].copy_from_slice(&sig);
        Ok(())
    }

    /// Checks the message's own signature in constant time. The SIGNED flag is not
    /// consulted: a message that must be signed is checked whether or not it claims to be
    /// (see [`must_verify`] for which messages must be).
    pub fn verify(&self, message: &[u8]) -> Result<(), SigningError> {
        let expected = self.signature(message)?;
        if expected.matches(&message[SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN]) {
            Ok(())
        } else {
            Err(SigningError::BadSignature)
        }
    }

    /// The signatures of several independent messages (e.g. the READ responses or WRITE
    /// requests a server has in flight), `tags[i]` for `messages[i]`. AES-CMAC runs up to 8
    /// messages' AES chains side by side, several times the speed of one message after
    /// another; the other algorithms sign one by one (GMAC is already parallel inside).
    pub fn signature_batch(
        &self,
        messages: &[&[u8]],
        tags: &mut [Tag],
    ) -> Result<(), SigningError> {
        if messages.len() != tags.len() {
            return Err(SigningError::BatchLength {
                messages: messages.len(),
                tags: tags.len(),
            });
        }
        for m in messages {
            check_len(m)?;
        }
        match &*self.material {
            KeyMaterial::Cmac(k) => aes_cmac::cmac_batch(k, messages, tags),
            _ => {
                for (m, t) in messages.iter().zip(tags.iter_mut()) {
                    *t = self.signature(m)?;
                }
            }
        }
        Ok(())
    }

    /// Signs several independent messages (see [`SigningKey::signature_batch`]): sets each
    /// one's SIGNED flag and writes its signature. Nothing is written if any message is
    /// shorter than a header.
    pub fn sign_batch(&self, messages: &mut [&mut [u8]]) -> Result<(), SigningError> {
        for m in messages.iter() {
            check_len(m)?;
        }
        for group in messages.chunks_mut(8) {
            for m in group.iter_mut() {
                set_signed_flag(m);
            }
            let mut tags = [Tag::default(); 8];
            let n = group.len();
            {
                let mut view: [&[u8]; 8] = [&[]; 8];
                for (v, m) in view.iter_mut().zip(group.iter()) {
                    *v = m;
                }
                self.signature_batch(&view[..n], &mut tags[..n])?;
            }
            for (m, t) in group.iter_mut().zip(tags) {
                m[SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN].copy_from_slice(&t.0);
            }
        }
        Ok(())
    }

    /// Verifies several independent messages (see [`SigningKey::signature_batch`]); one
    /// result per message, in order, each as [`SigningKey::verify`] would give it.
    pub fn verify_batch(&self, messages: &[&[u8]]) -> Vec<Result<(), SigningError>> {
        let mut out = Vec::with_capacity(messages.len());
        for group in messages.chunks(8) {
            let mut tags = [Tag::default(); 8];
            let n = group.len();
            match self.signature_batch(group, &mut tags[..n]) {
                Ok(()) => out.extend(group.iter().zip(tags).map(|(m, t)| {
                    if t.matches(&m[SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN]) {
                        Ok(())
                    } else {
                        Err(SigningError::BadSignature)
                    }
                })),
                // A short message in the group: check each on its own for its own error.
                Err(_) => out.extend(group.iter().map(|m| self.verify(m))),
            }
        }
        out
    }

    /// Signs each message of a compound chain, its padding included (MS-SMB2 3.2.4.1.4 /
    /// 3.3.4.1.1: each message of a compound is signed separately). Set every NextCommand
    /// first: the chain is split on them, and they are covered by the signatures.
    pub fn sign_chain(&self, chain: &mut [u8]) -> Result<(), SigningError> {
        for range in crate::compound::split_chain(chain)? {
            // split_chain returns ranges inside `chain`; `get_mut` keeps this panic-free anyway.
            let message = chain
                .get_mut(range)
                .ok_or(SigningError::TooShort { len: 0 })?;
            self.sign(message)?;
        }
        Ok(())
    }

    /// Verifies each message of a compound chain, padding included; the first failure wins.
    pub fn verify_chain(&self, chain: &[u8]) -> Result<(), SigningError> {
        for range in crate::compound::split_chain(chain)? {
            let message = chain.get(range).ok_or(SigningError::TooShort { len: 0 })?;
            self.verify(message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(f: impl FnOnce(&mut Header)) -> Header {
        let mut h = Header::request(Command::READ, 9, 0x77, 1);
        f(&mut h);
        h
    }

    #[test]
    fn must_verify_table() {
        let response = |f: fn(&mut Header)| {
            let mut h = Header::request(Command::READ, 9, 0x77, 1).response(NtStatus::SUCCESS);
            f(&mut h);
            h
        };
        // (case, header, session requires signing, exemption, must verify)
        let cases: [(&str, Header, bool, Option<Exemption>, bool); 12] = [
            ("unsigned, not required", header(|_| {}), false, None, false),
            ("unsigned, required", header(|_| {}), true, None, true),
            (
                "signed flag, not required",
                header(|h| h.flags |= flags::SIGNED),
                false,
                None,
                true,
            ),
            (
                "session 0",
                header(|h| h.session_id = 0),
                true,
                Some(Exemption::NoSession),
                false,
            ),
            (
                "session 0 claiming a signature",
                header(|h| {
                    h.session_id = 0;
                    h.flags |= flags::SIGNED
                }),
                true,
                Some(Exemption::NoSession),
                false,
            ),
            (
                "oplock break notification",
                response(|h| {
                    h.command = Command::OPLOCK_BREAK;
                    h.message_id = OPLOCK_BREAK_MESSAGE_ID
                }),
                true,
                Some(Exemption::BreakNotification),
                false,
            ),
            (
                "lease break notification (session 0)",
                response(|h| {
                    h.command = Command::OPLOCK_BREAK;
                    h.message_id = OPLOCK_BREAK_MESSAGE_ID;
                    h.session_id = 0
                }),
                true,
                Some(Exemption::BreakNotification),
                false,
            ),
            (
                "MessageId all ones on another command",
                response(|h| h.message_id = OPLOCK_BREAK_MESSAGE_ID),
                true,
                None,
                true,
            ),
            (
                "interim STATUS_PENDING",
                response(|h| {
                    h.async_id = Some(4);
                    h.status = NtStatus::PENDING
                }),
                true,
                Some(Exemption::InterimResponse),
                false,
            ),
            (
                "final async response",
                response(|h| h.async_id = Some(4)),
                true,
                None,
                true,
            ),
            (
                "request dressed as an interim response",
                header(|h| {
                    h.async_id = Some(4);
                    h.status = NtStatus::PENDING
                }),
                true,
                None,
                true,
            ),
            (
                "request dressed as a break notification",
                header(|h| {
                    h.command = Command::OPLOCK_BREAK;
                    h.message_id = OPLOCK_BREAK_MESSAGE_ID
                }),
                true,
                None,
                true,
            ),
        ];
        for (case, h, required, exempt, want) in cases {
            assert_eq!(exemption(&h), exempt, "{case}");
            assert_eq!(must_verify(&h, required), want, "{case}");
        }
    }

    #[test]
    fn tag_equality_and_debug() {
        let a = Tag::from([1; 16]);
        assert_eq!(a, Tag::from([1; 16]));
        assert_ne!(a, Tag::from([2; 16]));
        assert!(a.matches(&[1; 16]));
        assert!(!a.matches(&[1; 15]));
        assert_eq!(
            format!("{:?}", Tag::from([0xab; 16])),
            format!("Tag({})", "ab".repeat(16))
        );
    }
}
