//! Relay attacker, tamper MitM, scenarios and the engine CLI.
