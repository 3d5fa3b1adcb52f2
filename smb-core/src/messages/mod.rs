//! SMB2 message bodies, one file per command.
