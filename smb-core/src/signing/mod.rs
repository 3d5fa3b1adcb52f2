//! Message signing and key derivation.
