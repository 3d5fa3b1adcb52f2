//! What one relay attempt did, step by step: the record the reports are rendered from.

use serde::Serialize;

/// One request the relay sent to the target after authentication, and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub request: String,
    pub detail: String,
    pub status: String,
    pub accepted: bool,
    /// The target signed its response (the relay cannot check it, only see the flag).
    pub response_signed: bool,
}

/// Where the attacker was stopped.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StopPoint {
    pub request: String,
    pub status: String,
}

/// Everything one relay attempt did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RelayAttempt {
    pub victim: Option<String>,
    pub target: String,
    /// The victim's NEGOTIATE SecurityMode (did the victim require signing?).
    pub victim_security_mode: Option<u16>,
    pub victim_dialect: Option<String>,
    pub target_dialect: Option<String>,
    pub target_security_mode: Option<u16>,
    pub target_requires_signing: Option<bool>,
    /// `DOMAIN\user` whose credentials were relayed.
    pub relayed_user: Option<String>,
    /// The target's final SESSION_SETUP status.
    pub auth_status: Option<String>,
    pub auth_accepted: bool,
    pub guest: bool,
    /// The target signed its final SESSION_SETUP response.
    pub auth_response_signed: bool,
    /// None when authentication did not succeed, so nothing was tried.
    pub first_post_auth_accepted: Option<bool>,
    pub listing: Option<Vec<String>>,
    pub marker_path: Option<String>,
    pub marker_written: bool,
    /// The first refused step (None: every step went through, or nothing was tried).
    pub stopped_at: Option<StopPoint>,
    /// The status the victim got for its SESSION_SETUP.
    pub victim_told: Option<String>,
    /// With `VictimReply::Guest`: what the victim did after being offered a guest session.
    pub victim_after_guest: Option<String>,
    pub steps: Vec<Step>,
    /// A transport or protocol error that ended the attempt.
    pub error: Option<String>,
}

impl RelayAttempt {
    /// The attacker got in and did what it wanted.
    pub fn succeeded(&self) -> bool {
        self.auth_accepted
            && self.first_post_auth_accepted == Some(true)
            && self.stopped_at.is_none()
    }

    /// Records one post-authentication step; the first refused one is where the attacker
    /// was stopped.
    pub fn record(&mut self, step: Step) {
        if !step.accepted && self.stopped_at.is_none() {
            self.stopped_at = Some(StopPoint {
                request: step.request.clone(),
                status: step.status.clone(),
            });
        }
        self.steps.push(step);
    }

    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let who = self.relayed_user.as_deref().unwrap_or("?");
        let dialect = self.target_dialect.as_deref().unwrap_or("?");
        let auth = match (&self.auth_status, self.auth_accepted) {
            (_, true) => "accepted".to_string(),
            (Some(s), false) => format!("refused ({s})"),
            (None, false) => "not reached".to_string(),
        };
        let post = match self.first_post_auth_accepted {
            Some(true) => "accepted",
            Some(false) => "refused",
            None => "not tried",
        };
        let stop = self
            .stopped_at
            .as_ref()
            .map(|s| format!("{} -> {}", s.request, s.status))
            .or_else(|| self.error.clone())
            .unwrap_or_else(|| "not stopped".into());
        format!(
            "relay of {who} to {} (SMB {dialect}): authentication {auth}; first post-auth request \
             {post}; marker written: {}; stopped at: {stop}",
            self.target,
            if self.marker_written { "yes" } else { "no" },
        )
    }
}
