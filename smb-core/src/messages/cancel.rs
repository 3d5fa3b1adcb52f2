//! SMB2 CANCEL request (MS-SMB2 2.2.30). There is no CANCEL response: the cancelled
//! request itself completes (usually with STATUS_CANCELLED).

use super::empty_body;

empty_body!(
    /// SMB2 CANCEL request; the header's MessageId or AsyncId names the request to cancel.
    CancelRequest,
    CANCEL,
    "CANCEL request"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::req;

    #[test]
    fn round_trip() {
        let msg = build(&req(Command::CANCEL), &CancelRequest);
        assert_eq!(&msg[64..], &[4, 0, 0, 0]);
        assert_eq!(CancelRequest::read(&msg), Ok(CancelRequest));
        assert!(CancelRequest::read(&msg[..64]).is_err());
    }
}
