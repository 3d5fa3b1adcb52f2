//! The engine's command-line face: `keys`, `sign`, `verify`, `preauth`.
//!
//! Lower-case hex in (upper case is accepted too), lower-case hex out, one `name=value` a line.
//! Exit codes: 0 success, 1 `verify` found the signature invalid, 2 bad input (one line on
//! stderr, never a panic).

use std::fmt;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::Args;
use smb_core::compound::split_chain;
use smb_core::framing::MAX_STREAM_LEN;
use smb_core::header::{flags, Dialect, Header, HEADER_LEN, SIGNATURE_LEN, SIGNATURE_OFFSET};
use smb_core::signing::kdf::{derive_session_keys, Cipher};
use smb_core::signing::preauth::PreauthHash;
use smb_core::signing::{Algorithm, SigningError, SigningKey};
use zeroize::Zeroizing;

const DIALECTS: &str = "2.0.2, 2.1, 3.0, 3.0.2 or 3.1.1";
const ALGORITHMS: &str = "hmac-sha256, aes-cmac or aes-gmac";
const CIPHERS: &str = "aes-128-ccm, aes-128-gcm, aes-256-ccm or aes-256-gcm";

/// `smb-lab keys`: derive a session's keys.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Dialect: 2.0.2, 2.1, 3.0, 3.0.2 or 3.1.1.
    #[arg(long, value_name = "D")]
    dialect: String,
    /// Session key (Session.SessionKey), in hex.
    #[arg(long, value_name = "HEX")]
    session_key: String,
    /// 3.1.1 only: the session's preauth integrity hash (64 bytes), in hex.
    #[arg(long, value_name = "HEX")]
    preauth_hash: Option<String>,
    /// 3.x only: the negotiated cipher (AES-256 ciphers give 32-byte encryption keys).
    #[arg(long, value_name = "CIPHER")]
    cipher: Option<String>,
}

/// `smb-lab sign` and `smb-lab verify`: one message (or compound chain) and its key.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Dialect: 2.0.2, 2.1, 3.0, 3.0.2 or 3.1.1.
    #[arg(long, value_name = "D")]
    dialect: String,
    /// Signing algorithm; by default the dialect's (AES-CMAC for 3.1.1).
    #[arg(long, value_name = "ALG")]
    algorithm: Option<String>,
    /// Signing key in hex (the session key for 2.x, the derived signing key for 3.x).
    #[arg(long, value_name = "HEX")]
    key: String,
    /// The message as on the wire, without the 4-byte TCP prefix: hex, or @FILE for raw bytes.
    /// A compound chain is signed message by message.
    #[arg(long, value_name = "HEX|@FILE")]
    message: String,
}

/// `smb-lab preauth`: the 3.1.1 preauth integrity hash chain.
#[derive(Debug, Args)]
pub struct PreauthArgs {
    /// A message as on the wire (hex or @FILE); repeat in the order they were sent.
    #[arg(long, value_name = "HEX|@FILE", required = true)]
    message: Vec<String>,
}

/// Bad input: reported on one line, exit 2.
#[derive(Debug)]
struct BadInput(String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<SigningError> for BadInput {
    fn from(e: SigningError) -> Self {
        BadInput(e.to_string())
    }
}

fn bad(msg: impl Into<String>) -> BadInput {
    BadInput(msg.into())
}

/// Runs `keys`.
pub fn keys(args: &KeysArgs) -> ExitCode {
    finish(run_keys(args).map(|lines| (lines, ExitCode::SUCCESS)))
}

/// Runs `sign`.
pub fn sign(args: &SignArgs) -> ExitCode {
    finish(run_sign(args).map(|lines| (lines, ExitCode::SUCCESS)))
}

/// Runs `verify`: exit 0 when every signature is valid, 1 otherwise.
pub fn verify(args: &SignArgs) -> ExitCode {
    finish(run_verify(args))
}

/// Runs `preauth`.
pub fn preauth(args: &PreauthArgs) -> ExitCode {
    finish(run_preauth(args).map(|lines| (lines, ExitCode::SUCCESS)))
}

/// Prints the output lines (or the error) and picks the exit code.
fn finish(result: Result<(Vec<String>, ExitCode), BadInput>) -> ExitCode {
    match result {
        Ok((lines, code)) => {
            let mut out = io::stdout().lock();
            for line in lines {
                // A closed stdout (`| head`) is not worth a panic or a different exit code.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
            code
        }
        Err(e) => {
            eprintln!("smb-lab: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_keys(args: &KeysArgs) -> Result<Vec<String>, BadInput> {
    let dialect = parse_dialect(&args.dialect)?;
    let session_key = Zeroizing::new(parse_hex(&args.session_key, "--session-key")?);
    if session_key.is_empty() {
        return Err(bad("--session-key is empty"));
    }
    let preauth = match &args.preauth_hash {
        None => None,
        Some(_) if dialect != Dialect::SMB311 => {
            return Err(bad(format!(
                "--preauth-hash applies to 3.1.1 only; {} keys do not use one",
                dialect.dotted()
            )))
        }
        Some(h) => {
            let bytes = parse_hex(h, "--preauth-hash")?;
            let hash: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
                bad(format!(
                    "--preauth-hash is {} bytes, must be 64 (SHA-512)",
                    bytes.len()
                ))
            })?;
            Some(hash)
        }
    };
    // MS-SMB2 3.3.5.5.3: 3.1.1 keys take the preauth integrity hash as KDF context.
    if dialect == Dialect::SMB311 && preauth.is_none() {
        return Err(bad(
            "3.1.1 keys need --preauth-hash (the session's preauth integrity hash)",
        ));
    }
    let cipher = match &args.cipher {
        None => None,
        Some(_) if !dialect.is_smb3() => {
            return Err(bad(format!(
                "--cipher applies to SMB 3.x only; {} has no encryption",
                dialect.dotted()
            )))
        }
        Some(c) => {
            let cipher = Cipher::parse(c)
                .ok_or_else(|| bad(format!("unknown cipher '{c}' (expected {CIPHERS})")))?;
            // Ciphers are negotiated in 3.1.1's SMB2_ENCRYPTION_CAPABILITIES context
            // (MS-SMB2 2.2.3.1.2); 3.0 and 3.0.2 always encrypt with AES-128-CCM.
            if dialect != Dialect::SMB311 && cipher != Cipher::Aes128Ccm {
                return Err(bad(format!(
                    "--cipher {c} needs dialect 3.1.1 ({} encrypts with aes-128-ccm only)",
                    dialect.dotted()
                )));
            }
            Some(cipher)
        }
    };
    let keys = derive_session_keys(dialect, &session_key, preauth.as_ref(), cipher)?;
    let mut lines = vec![format!("signing_key={}", hex::encode(&keys.signing))];
    if dialect.is_smb3() {
        lines.push(format!(
            "application_key={}",
            hex::encode(&keys.application)
        ));
        lines.push(format!(
            "client_encryption_key={}",
            hex::encode(&keys.client_encryption)
        ));
        lines.push(format!(
            "client_decryption_key={}",
            hex::encode(&keys.client_decryption)
        ));
    }
    Ok(lines)
}

/// The key and the message (split into its compound parts) shared by `sign` and `verify`.
struct Signable {
    key: SigningKey,
    message: Vec<u8>,
    parts: Vec<std::ops::Range<usize>>,
}

fn prepare(args: &SignArgs) -> Result<Signable, BadInput> {
    let dialect = parse_dialect(&args.dialect)?;
    let algorithm = match &args.algorithm {
        None => Algorithm::for_dialect(dialect, None),
        Some(a) => {
            let alg = Algorithm::parse(a)
                .ok_or_else(|| bad(format!("unknown algorithm '{a}' (expected {ALGORITHMS})")))?;
            check_algorithm(dialect, alg)?;
            alg
        }
    };
    let key_bytes = Zeroizing::new(parse_hex(&args.key, "--key")?);
    let key = SigningKey::new(algorithm, &key_bytes)?;
    let message = read_message(&args.message)?;
    let parts = split_chain(&message).map_err(|e| bad(format!("--message: {e}")))?;
    for (i, range) in parts.iter().enumerate() {
        let part = message.get(range.clone()).unwrap_or_default();
        Header::parse(part).map_err(|e| bad(format!("--message (message {}): {e}", i + 1)))?;
    }
    Ok(Signable {
        key,
        message,
        parts,
    })
}

/// MS-SMB2 3.1.4.1: 2.x signs with HMAC-SHA256 and 3.0/3.0.2 with AES-CMAC; only 3.1.1
/// negotiates the algorithm. Another combination is a mistake on the command line.
fn check_algorithm(dialect: Dialect, algorithm: Algorithm) -> Result<(), BadInput> {
    let allowed = if dialect == Dialect::SMB311 {
        true
    } else {
        algorithm == Algorithm::for_dialect(dialect, None)
    };
    if allowed {
        Ok(())
    } else {
        Err(bad(format!(
            "{} is not used by dialect {} (it signs with {}; only 3.1.1 negotiates the algorithm)",
            algorithm.name(),
            dialect.dotted(),
            Algorithm::for_dialect(dialect, None).name()
        )))
    }
}

fn run_sign(args: &SignArgs) -> Result<Vec<String>, BadInput> {
    let s = prepare(args)?;
    let mut lines = Vec::with_capacity(s.parts.len());
    for range in &s.parts {
        let part = s.message.get(range.clone()).unwrap_or_default();
        lines.push(format!("signature={}", hex::encode(s.key.signature(part)?)));
    }
    Ok(lines)
}

fn run_verify(args: &SignArgs) -> Result<(Vec<String>, ExitCode), BadInput> {
    let s = prepare(args)?;
    let many = s.parts.len() > 1;
    let mut lines = Vec::new();
    let mut failed = false;
    for (i, range) in s.parts.iter().enumerate() {
        let part = s.message.get(range.clone()).unwrap_or_default();
        let which = if many {
            format!("message {}: ", i + 1)
        } else {
            String::new()
        };
        let unsigned_note = if signed_flag(part) {
            ""
        } else {
            " (note: the SIGNED flag is not set)"
        };
        match s.key.verify(part) {
            Ok(()) => lines.push(format!("{which}signature valid{unsigned_note}")),
            Err(SigningError::BadSignature) => {
                failed = true;
                let expected = s.key.signature(part)?;
                let carried = part.get(SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN);
                lines.push(format!(
                    "{which}signature invalid: message carries {}, {} with this key gives {}{unsigned_note}",
                    hex::encode(carried.unwrap_or_default()),
                    s.key.algorithm().name(),
                    hex::encode(expected),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((
        lines,
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    ))
}

fn signed_flag(message: &[u8]) -> bool {
    Header::parse(message)
        .map(|h| h.flags & flags::SIGNED != 0)
        .unwrap_or(false)
}

fn run_preauth(args: &PreauthArgs) -> Result<Vec<String>, BadInput> {
    // Read and check every message before printing anything.
    let messages = args
        .message
        .iter()
        .map(|m| read_message(m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut hash = PreauthHash::new();
    let mut lines = Vec::with_capacity(messages.len());
    for message in &messages {
        hash.update(message);
        lines.push(format!("hash={}", hex::encode(hash.value())));
    }
    Ok(lines)
}

fn parse_dialect(s: &str) -> Result<Dialect, BadInput> {
    Dialect::parse(s).ok_or_else(|| bad(format!("unknown dialect '{s}' (expected {DIALECTS})")))
}

/// Hex (either case; surrounding whitespace ignored) into bytes, with a one-line reason.
fn parse_hex(s: &str, what: &str) -> Result<Vec<u8>, BadInput> {
    let s = s.trim();
    hex::decode(s).map_err(|e| match e {
        hex::FromHexError::OddLength => {
            bad(format!("{what}: odd number of hex digits ({})", s.len()))
        }
        hex::FromHexError::InvalidHexCharacter { c, index } => bad(format!(
            "{what}: '{}' at position {index} is not a hex digit",
            c.escape_default()
        )),
        other => bad(format!("{what}: {other}")),
    })
}

/// A message given as hex or as `@FILE` (raw bytes). It must at least hold an SMB2 header.
fn read_message(arg: &str) -> Result<Vec<u8>, BadInput> {
    let message = match arg.strip_prefix('@') {
        Some("") => return Err(bad("--message @FILE: no file name after '@'")),
        Some(path) => read_file_bounded(path)?,
        None => parse_hex(arg, "--message")?,
    };
    if message.len() < HEADER_LEN {
        return Err(bad(format!(
            "--message is {} bytes, shorter than the {HEADER_LEN}-byte SMB2 header",
            message.len()
        )));
    }
    Header::parse(&message).map_err(|e| bad(format!("--message: {e}")))?;
    Ok(message)
}

/// Reads a message file, refusing anything larger than one Direct-TCP frame can carry.
fn read_file_bounded(path: &str) -> Result<Vec<u8>, BadInput> {
    let cannot = |e: io::Error| bad(format!("--message: cannot read '{path}': {e}"));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut message = Vec::new();
    file.take(MAX_STREAM_LEN as u64 + 1)
        .read_to_end(&mut message)
        .map_err(cannot)?;
    if message.len() > MAX_STREAM_LEN {
        return Err(bad(format!(
            "--message: '{path}' is larger than the largest SMB2 frame ({MAX_STREAM_LEN} bytes)"
        )));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_errors_are_one_line_and_name_the_argument() {
        let e = parse_hex("abc", "--key").unwrap_err().to_string();
        assert!(e.contains("--key") && e.contains("odd"), "{e}");
        let e = parse_hex("zz", "--key").unwrap_err().to_string();
        assert!(e.contains("'z'") && e.contains("position 0"), "{e}");
        let e = parse_hex("0\n", "--key").unwrap_err().to_string();
        assert!(!e.contains('\n'));
        assert_eq!(parse_hex(" 0A0b ", "--key").unwrap(), [0x0A, 0x0B]);
    }

    #[test]
    fn algorithm_must_fit_the_dialect() {
        assert!(check_algorithm(Dialect::SMB21, Algorithm::HmacSha256).is_ok());
        assert!(check_algorithm(Dialect::SMB21, Algorithm::AesCmac).is_err());
        assert!(check_algorithm(Dialect::SMB30, Algorithm::AesGmac).is_err());
        assert!(check_algorithm(Dialect::SMB302, Algorithm::AesCmac).is_ok());
        for alg in [
            Algorithm::HmacSha256,
            Algorithm::AesCmac,
            Algorithm::AesGmac,
        ] {
            assert!(check_algorithm(Dialect::SMB311, alg).is_ok());
        }
    }
}
