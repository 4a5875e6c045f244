//! The server's error type. Each variant maps to exactly one HTTP status and
//! one stable error code, here and nowhere else; internal faults are logged
//! once, when they are turned into a response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesh_protocol::api::{ErrorBody, ErrorCode, ErrorDetail, SecondFactor};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input; the message names the problem.
    #[error("{0}")]
    BadRequest(String),
    /// A file entry refers to chunks the caller has not uploaded.
    #[error("{0}")]
    MissingChunks(String),
    /// Missing, wrong or revoked credentials.
    #[error("authentication required: send a valid device token as `Authorization: Bearer …`")]
    Unauthorized,
    /// Wrong e-mail address or password at enrollment.
    #[error("wrong e-mail address or password")]
    BadCredentials,
    /// The password was right, and the account needs an authentication
    /// code (or a recovery code) too. Only ever said to a caller that gave
    /// the right password.
    #[error(
        "this account needs an authentication code too: a current code of its \
         authenticator app, or one of its recovery codes"
    )]
    SecondFactorRequired,
    /// The password was right, the authentication code wrong or already
    /// used.
    #[error("wrong or already used authentication code")]
    BadSecondFactor,
    /// The caller is a member but its role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or not visible to the caller: the two are indistinguishable.
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state (an invitation that is
    /// no longer pending, the last owner leaving, …).
    #[error("{0}")]
    Conflict(String),
    /// It existed, but is gone for good (an expired invitation).
    #[error("{0}")]
    Gone(String),
    /// An e-mail could not be handed to the mail system; nothing changed.
    #[error("the e-mail could not be sent: {0}")]
    MailFailed(String),
    #[error("payload too large: {0}")]
    TooLarge(String),
    #[error("range not satisfiable")]
    RangeNotSatisfiable { length: u64 },
    /// Too many attempts (failed sign-ins, requests from one address,
    /// open streams); `Retry-After` says when to try again.
    #[error("too many attempts; try again in {} s", retry_after.as_secs().max(1))]
    TooManyRequests { retry_after: std::time::Duration },
    /// This device holds as many event streams open as it may (the number).
    #[error("this device already has {0} event streams open, the most it may; close one first")]
    TooManyStreams(usize),
    /// The server has no room for this now (every password check is taken
    /// and the queue waited too long); `Retry-After` says when to try again.
    #[error("the server is busy; try again in {} s", retry_after.as_secs().max(1))]
    Unavailable { retry_after: std::time::Duration },
    /// The write would take the storage of the object's owner beyond
    /// their quota; nothing changed.
    #[error("{0}")]
    OverQuota(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            ApiError::MissingChunks(_) => (StatusCode::BAD_REQUEST, ErrorCode::MissingChunks),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::BadCredentials | ApiError::BadSecondFactor => {
                (StatusCode::UNAUTHORIZED, ErrorCode::BadCredentials)
            }
            ApiError::SecondFactorRequired => {
                (StatusCode::UNAUTHORIZED, ErrorCode::SecondFactorRequired)
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::Gone(_) => (StatusCode::GONE, ErrorCode::Gone),
            ApiError::MailFailed(_) => (StatusCode::BAD_GATEWAY, ErrorCode::MailFailed),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            ApiError::RangeNotSatisfiable { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
            ),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests)
            }
            ApiError::TooManyStreams(_) => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests)
            }
            ApiError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
            }
            ApiError::OverQuota(_) => (StatusCode::INSUFFICIENT_STORAGE, ErrorCode::OverQuota),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ApiError {
    /// The answer to this error with `body` (made from the error, its
    /// stable code and its message): the error's status and headers,
    /// and internal faults logged, once. The API's JSON errors and the
    /// invitation page's HTML errors both come from here.
    pub(crate) fn respond_with<B: IntoResponse>(
        self,
        body: impl FnOnce(&ApiError, ErrorCode) -> B,
    ) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let mut response = (status, body(&self, code)).into_response();
        match self {
            ApiError::Unauthorized
            | ApiError::BadCredentials
            | ApiError::SecondFactorRequired
            | ApiError::BadSecondFactor => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"meshd\""),
                );
            }
            ApiError::RangeNotSatisfiable { length } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            ApiError::TooManyRequests { retry_after } | ApiError::Unavailable { retry_after } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond_with(|error, code| {
            axum::Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message: error.to_string(),
                    second_factor: matches!(error, ApiError::SecondFactorRequired)
                        .then_some(SecondFactor::Totp),
                },
            })
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
