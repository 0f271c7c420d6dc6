//! What can go wrong talking to Table storage, in our own words. The
//! service's own error text is never passed on: it can quote the request
//! URL (with a SAS `sig=`), whole XML bodies and request ids. A failure
//! keeps the HTTP status and the service's error code, nothing more.

use azure_core::error::ErrorKind;
use azure_core::StatusCode;
use std::fmt;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Storage could not be reached or kept failing within the deadline.
    #[error("storage is unavailable: could not {operation} ({failure})")]
    Unavailable {
        operation: &'static str,
        failure: Failure,
    },
    /// Someone else changed the row first (optimistic concurrency).
    #[error("the row was changed by another writer")]
    Conflict,
    /// Storage refused the request; retrying will not help.
    #[error("storage refused to {operation} ({failure})")]
    Rejected {
        operation: &'static str,
        failure: Failure,
    },
    /// A row of ours could not be read back (edited by hand?).
    #[error("{0} is malformed")]
    Malformed(&'static str),
    /// The table does not exist.
    #[error("table {0} does not exist (see LEADS_TABLE)")]
    NoTable(String),
}

impl StoreError {
    /// The HTTP status storage answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Unavailable { failure, .. } | Self::Rejected { failure, .. } => failure.status,
            Self::Conflict | Self::Malformed(_) => None,
            Self::NoTable(_) => Some(StatusCode::NotFound),
        }
    }

    pub fn is_status(&self, status: StatusCode) -> bool {
        self.status() == Some(status)
    }

    /// What to do about a refusal that is a matter of access, for a person
    /// at the command line (the storage account of the Bicep template
    /// allows no shared key, and its tables only to identities with a
    /// data role).
    pub fn hint(&self) -> Option<&'static str> {
        let Self::Rejected { failure, .. } = self else {
            return None;
        };
        if failure.status != Some(StatusCode::Forbidden) {
            return None;
        }
        Some(match failure.code.as_deref() {
            Some("KeyBasedAuthenticationNotPermitted") => {
                "the storage account allows no shared key: sign in with `az login` and set \
                 LEADS_STORAGE__accountName=<account> instead of a connection string"
            }
            Some("AuthenticationFailed") => {
                "the account key or token was refused: check the connection string, or \
                 `az login` again"
            }
            _ => {
                "your identity has no data access to the table: it needs the role \
                 \"Storage Table Data Contributor\" on the storage account — \
                 az role assignment create --role \"Storage Table Data Contributor\" \
                 --assignee \"$(az ad signed-in-user show --query id -o tsv)\" \
                 --scope \"$(az storage account show -n <account> --query id -o tsv)\" \
                 (or deploy infra/main.bicep with operatorObjectId); a new role takes a few \
                 minutes to apply"
            }
        })
    }
}

/// One failed request, described without anything the service said beyond
/// its status and error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: Option<StatusCode>,
    /// Table storage's error code, e.g. `AuthenticationFailed`.
    pub code: Option<String>,
    what: What,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Answered,
    TimedOut,
    Unreachable,
    Credential,
    Unreadable,
    Other,
}

impl Failure {
    pub(super) fn timed_out() -> Self {
        Self {
            status: None,
            code: None,
            what: What::TimedOut,
        }
    }

    /// The service answered `status`, with its error `code` if it gave
    /// one (a failed operation inside a batch).
    pub(super) fn answered(status: StatusCode, code: Option<String>) -> Self {
        Self {
            status: Some(status),
            code,
            what: What::Answered,
        }
    }

    /// The service answered something we could not read.
    pub(super) fn unreadable() -> Self {
        Self {
            status: None,
            code: None,
            what: What::Unreadable,
        }
    }

    pub(super) fn of(error: &azure_core::Error) -> Self {
        let (status, code, what) = match error.kind() {
            ErrorKind::HttpResponse { status, error_code } => {
                (Some(*status), error_code.clone(), What::Answered)
            }
            ErrorKind::Io => (None, None, What::Unreachable),
            ErrorKind::Credential => (None, None, What::Credential),
            ErrorKind::DataConversion => (None, None, What::Unreadable),
            _ => (None, None, What::Other),
        };
        Self { status, code, what }
    }

    /// Worth another attempt: the service was busy or unreachable, or the
    /// token could not be had for a moment.
    pub(super) fn is_transient(&self) -> bool {
        match self.status {
            Some(status) => {
                status.is_server_error()
                    || matches!(
                        status,
                        StatusCode::RequestTimeout | StatusCode::TooManyRequests
                    )
            }
            None => matches!(
                self.what,
                What::TimedOut | What::Unreachable | What::Credential
            ),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, &self.code, self.what) {
            (Some(status), Some(code), _) => write!(f, "HTTP {} {code}", u16::from(status)),
            (Some(status), None, _) => write!(f, "HTTP {}", u16::from(status)),
            (None, _, What::TimedOut) => f.write_str("timed out"),
            (None, _, What::Unreachable) => {
                f.write_str("could not connect or the connection broke")
            }
            (None, _, What::Credential) => {
                f.write_str("could not get a token for the app's identity")
            }
            (None, _, What::Unreadable) => f.write_str("its answer could not be read"),
            (None, _, _) => f.write_str("the request failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_says_status_and_code_and_nothing_the_service_wrote() {
        let error = azure_core::Error::full(
            ErrorKind::HttpResponse {
                status: StatusCode::Forbidden,
                error_code: Some("AuthenticationFailed".into()),
            },
            std::io::Error::other(
                "<?xml ...><Message>Server failed to authenticate RequestId:abc</Message>",
            ),
            "https://acct.table.core.windows.net/T?sv=2022&sig=SECRETSIG",
        );
        let failure = Failure::of(&error);
        assert_eq!(failure.to_string(), "HTTP 403 AuthenticationFailed");
        let store = StoreError::Rejected {
            operation: "save a lead",
            failure,
        };
        let text = format!("{store} {store:?}");
        for leak in ["SECRETSIG", "RequestId", "xml"] {
            assert!(!text.contains(leak), "{text}");
        }
        assert_eq!(store.status(), Some(StatusCode::Forbidden));
    }

    #[test]
    fn io_errors_are_transient_and_say_so_without_the_url() {
        let error = azure_core::Error::full(
            ErrorKind::Io,
            std::io::Error::other("error sending request for url (http://x/?sig=abc)"),
            "failed to execute `reqwest` request",
        );
        let failure = Failure::of(&error);
        assert!(failure.is_transient());
        assert!(!failure.to_string().contains("sig="));
        assert!(Failure::timed_out().is_transient());
    }
}
