//! SMB2 ECHO request and response (MS-SMB2 2.2.28, 2.2.29): StructureSize 4 and a Reserved field.

use super::empty_body;

empty_body!(
    /// SMB2 ECHO request.
    EchoRequest,
    ECHO,
    "ECHO request"
);
empty_body!(
    /// SMB2 ECHO response.
    EchoResponse,
    ECHO,
    "ECHO response"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip_and_leniency() {
        let msg = build(&req(Command::ECHO), &EchoRequest);
        assert_eq!(&msg[64..], &[4, 0, 0, 0]);
        assert_eq!(EchoRequest::read(&msg), Ok(EchoRequest));
        let msg = build(&resp(Command::ECHO), &EchoResponse);
        assert_eq!(EchoResponse::read(&msg), Ok(EchoResponse));
        // Chain padding, any longer tail and a non-zero Reserved are ignored (as Samba
        // does); a wrong StructureSize or a short body is an error.
        let mut padded = msg.clone();
        padded.extend_from_slice(&[0; 4]);
        assert!(EchoResponse::read(&padded).is_ok());
        padded.extend_from_slice(&[0xAA; 40]);
        padded[66] = 0x55;
        assert!(EchoResponse::read(&padded).is_ok());
        let mut bad = msg.clone();
        bad[64] = 5;
        assert!(EchoResponse::read(&bad).is_err());
        assert!(EchoResponse::read(&msg[..66]).is_err());
    }
}
