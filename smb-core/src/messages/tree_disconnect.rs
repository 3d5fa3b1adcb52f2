//! SMB2 TREE_DISCONNECT request and response (MS-SMB2 2.2.11, 2.2.12): StructureSize 4 and a Reserved field.

use super::empty_body;

empty_body!(
    /// SMB2 TREE_DISCONNECT request.
    TreeDisconnectRequest,
    TREE_DISCONNECT,
    "TREE_DISCONNECT request"
);
empty_body!(
    /// SMB2 TREE_DISCONNECT response.
    TreeDisconnectResponse,
    TREE_DISCONNECT,
    "TREE_DISCONNECT response"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip_and_leniency() {
        let msg = build(&req(Command::TREE_DISCONNECT), &TreeDisconnectRequest);
        assert_eq!(&msg[64..], &[4, 0, 0, 0]);
        assert_eq!(TreeDisconnectRequest::read(&msg), Ok(TreeDisconnectRequest));
        let msg = build(&resp(Command::TREE_DISCONNECT), &TreeDisconnectResponse);
        assert_eq!(
            TreeDisconnectResponse::read(&msg),
            Ok(TreeDisconnectResponse)
        );
        // Chain padding, any longer tail and a non-zero Reserved are ignored (as Samba
        // does); a wrong StructureSize or a short body is an error.
        let mut padded = msg.clone();
        padded.extend_from_slice(&[0; 4]);
        assert!(TreeDisconnectResponse::read(&padded).is_ok());
        padded.extend_from_slice(&[0xAA; 40]);
        padded[66] = 0x55;
        assert!(TreeDisconnectResponse::read(&padded).is_ok());
        let mut bad = msg.clone();
        bad[64] = 5;
        assert!(TreeDisconnectResponse::read(&bad).is_err());
        assert!(TreeDisconnectResponse::read(&msg[..66]).is_err());
    }
}
