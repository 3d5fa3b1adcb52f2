//! Sans-IO server connection state machine.
