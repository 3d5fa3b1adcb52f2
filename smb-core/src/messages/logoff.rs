//! SMB2 LOGOFF request and response (MS-SMB2 2.2.7, 2.2.8): StructureSize 4 and a Reserved field.

use super::empty_body;

empty_body!(
    /// SMB2 LOGOFF request.
    LogoffRequest,
    LOGOFF,
    "LOGOFF request"
);
empty_body!(
    /// SMB2 LOGOFF response.
    LogoffResponse,
    LOGOFF,
    "LOGOFF response"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip_and_leniency() {
        let msg = build(&req(Command::LOGOFF), &LogoffRequest);
        assert_eq!(&msg[64..], &[4, 0, 0, 0]);
        assert_eq!(LogoffRequest::read(&msg), Ok(LogoffRequest));
        let msg = build(&resp(Command::LOGOFF), &LogoffResponse);
        assert_eq!(LogoffResponse::read(&msg), Ok(LogoffResponse));
        // Chain padding, any longer tail and a non-zero Reserved are ignored (as Samba
        // does); a wrong StructureSize or a short body is an error.
        let mut padded = msg.clone();
        padded.extend_from_slice(&[0; 4]);
        assert!(LogoffResponse::read(&padded).is_ok());
        padded.extend_from_slice(&[0xAA; 40]);
        padded[66] = 0x55;
        assert!(LogoffResponse::read(&padded).is_ok());
        let mut bad = msg.clone();
        bad[64] = 5;
        assert!(LogoffResponse::read(&bad).is_err());
        assert!(LogoffResponse::read(&msg[..66]).is_err());
    }
}
