//! Sans-IO client connection state machine.
