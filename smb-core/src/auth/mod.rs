//! Authentication: NTLMv2 and SPNEGO.
