//! The payloads of meshd's HTTP API and change stream, shared by the server
//! and every client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::content::Hash;
use crate::live::{AwarenessEntry, NewsItem, TopicKind};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn generate() -> Self {
                $name(uuid::Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                uuid::Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// An enrolled device; also its FeedSync endpoint id (`by`).
    DeviceId
);
uuid_id!(
    /// A mesh object (a Live Folder, a list, …).
    ObjectId
);
uuid_id!(
    /// An invitation to become a member of a mesh object.
    InvitationId
);
uuid_id!(
    /// An app (a bot, an application): a principal owned by a user, with a
    /// token scoped to named objects.
    AppId
);

/// `POST /v1/tokens`: enroll a device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub email: String,
    pub password: String,
    pub device_name: String,
    /// The device's static X25519 public key, base64, for device-to-device
    /// channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The second factor of an account that has one: a current code of
    /// its authenticator app, or one of its recovery codes. Asked for by
    /// a `401` whose error is `second_factor_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
}

/// A second factor: what an account needs besides its password to sign
/// in (`totp`), and what a sign-in used (`totp`, `recovery_code`). A
/// factor this build does not know reads as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// A time-based one-time code (RFC 6238) of an authenticator app.
    Totp,
    /// One of the account's single-use recovery codes.
    RecoveryCode,
    #[serde(other)]
    Unknown,
}

impl SecondFactor {
    /// The factor's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactor::Totp => "totp",
            SecondFactor::RecoveryCode => "recovery_code",
            SecondFactor::Unknown => "unknown",
        }
    }

    /// The factor named `s`; `Unknown` for a name this build does not know.
    pub fn parse(s: &str) -> SecondFactor {
        [SecondFactor::Totp, SecondFactor::RecoveryCode]
            .into_iter()
            .find(|f| f.as_str() == s)
            .unwrap_or(SecondFactor::Unknown)
    }
}

/// `POST /v1/account/totp`: the account's owner asks for a new
/// authenticator key, proving it with the password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpBegin {
    pub password: String,
}

/// A new authenticator key, shown once: the otpauth:// link (and its
/// secret, base32, to type instead) and the recovery codes. Nothing
/// changes for sign-in until `POST /v1/account/totp/confirm` confirms it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotpKey {
    pub uri: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// `POST /v1/account/totp/confirm`: the app's current code for the new
/// key, which turns the second factor on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    pub totp: String,
}

/// `DELETE /v1/account/totp`: the password and a current code (or a
/// recovery code), as for a sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    pub password: String,
    pub totp: String,
}

/// The answer to a successful enrollment. The token is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub token: String,
}

/// One device in `GET /v1/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub name: String,
    pub online: bool,
    pub last_seen: Option<DateTime<Utc>>,
    pub enrolled: DateTime<Utc>,
    /// Whether this is the device making the request.
    pub current: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// A member's role on a mesh object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Editor,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn can_write(self) -> bool {
        self >= Role::Editor
    }
}

/// A mesh object as the API shows it to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshObject {
    pub id: ObjectId,
    pub kind: String,
    pub name: String,
    pub owner: UserId,
    /// The owner's e-mail address (a shared folder is told apart by it).
    pub owner_email: String,
    /// The caller's role.
    pub role: Role,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// A member of a mesh object (`GET /v1/objects/{id}/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user; for an app, its owner.
    pub user: UserId,
    /// The user's e-mail address; for an app, its owner's.
    pub email: String,
    /// The user's name; for an app, the app's.
    pub name: String,
    /// The role; for an app, what it may do now: its grant, at most its
    /// owner's role.
    pub role: Role,
    #[serde(default)]
    pub kind: MemberKind,
    /// The app's id, for `kind: "app"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppId>,
}

/// What a member is: a person, or an app one of them owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberKind {
    #[default]
    User,
    App,
}

/// One object an app may use, and its role there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppGrant {
    pub object: ObjectId,
    pub role: Role,
}

/// `POST /v1/apps`: a new app of the caller's, scoped to `objects`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    pub name: String,
    pub objects: Vec<AppGrant>,
}

/// An app as `GET /v1/apps` shows it to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: AppId,
    pub name: String,
    pub owner: UserId,
    pub owner_email: String,
    pub created: DateTime<Utc>,
    /// What it was granted; it may use each at most with its owner's role
    /// there now.
    pub objects: Vec<AppGrant>,
}

/// The answer to [`CreateApp`]. The token is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppCreated {
    pub app: App,
    pub token: String,
}

/// `POST /v1/objects/{id}/members`: share the object with an e-mail
/// address. An address that is a member already gets the new role; any
/// other is sent an invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub email: String,
    pub role: Role,
}

/// The answer to a [`Share`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ShareOutcome {
    /// The address was a member: its role changed (`200`).
    RoleChanged { member: Member },
    /// An invitation was sent (`201`).
    Invited { invitation: Invitation },
}

/// `PATCH /v1/objects/{id}/members/{user}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    pub role: Role,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationState {
    Pending,
    Accepted,
    Declined,
    Revoked,
    Expired,
}

impl InvitationState {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Accepted => "accepted",
            InvitationState::Declined => "declined",
            InvitationState::Revoked => "revoked",
            InvitationState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<InvitationState> {
        [
            InvitationState::Pending,
            InvitationState::Accepted,
            InvitationState::Declined,
            InvitationState::Revoked,
            InvitationState::Expired,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// An invitation, as its object's owners and its invitee see it (never
/// with its token, which only the e-mail carries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: InvitationId,
    pub object: ObjectId,
    pub object_name: String,
    pub object_kind: String,
    /// The invited address.
    pub email: String,
    pub role: Role,
    /// The inviting member's e-mail address.
    pub invited_by: String,
    pub state: InvitationState,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// For the invitation of an app (sent to its owner's address): the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppId>,
}

/// `POST /v1/objects/{id}/apps`: invite an app to the object; the
/// invitation goes to the app's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteApp {
    pub app: AppId,
    pub role: Role,
}

/// `POST /v1/invitations/accept`: accept by the token of an e-mailed link,
/// signed in as the invited address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptToken {
    pub token: String,
}

/// `POST /v1/objects`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateObject {
    pub name: String,
    pub kind: String,
}

/// `PATCH /v1/objects/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchObject {
    #[serde(default)]
    pub name: Option<String>,
}

/// The kind of a Live Folder.
pub const KIND_FOLDER: &str = "folder";

/// Checks an object kind: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter.
pub fn validate_kind(kind: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&kind.len())
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid kind {:?}: use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter",
            kind.chars().take(80).collect::<String>()
        ))
    }
}

/// `POST /v1/chunks/missing`: hashes in …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingRequest {
    pub hashes: Vec<Hash>,
}

/// … the ones the caller still has to upload out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingResponse {
    pub missing: Vec<Hash>,
}

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`not_found`, `bad_request`, …).
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// With `second_factor_required`: the factor the account needs
    /// (`totp`); send it as the sign-in's `totp` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<SecondFactor>,
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// The stable code of an error answer, one per kind of refusal; it
        /// travels as the string beside its variant, written only there. A
        /// code this build does not know (from a newer server) reads as
        /// [`ErrorCode::Unknown`], so an error body always reads.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
            /// A code this build does not know, as it was sent (never one
            /// of the codes above: those read as their variant).
            Unknown(String),
        }

        impl ErrorCode {
            /// Every code this build knows.
            pub const KNOWN: &[ErrorCode] = &[$(ErrorCode::$name),*];

            /// The code as it travels.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$name => $code,)*
                    ErrorCode::Unknown(code) => code,
                }
            }

            /// The code a string names; [`ErrorCode::Unknown`] if this build
            /// does not know it.
            pub fn parse(s: &str) -> ErrorCode {
                match s {
                    $($code => ErrorCode::$name,)*
                    _ => ErrorCode::Unknown(s.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// Malformed or invalid input.
    BadRequest = "bad_request",
    /// A file entry refers to chunks not uploaded.
    MissingChunks = "missing_chunks",
    /// Missing, wrong or revoked credentials.
    Unauthorized = "unauthorized",
    /// Wrong e-mail address or password at enrollment, or a wrong or
    /// used second factor.
    BadCredentials = "bad_credentials",
    /// The password was right, and the account needs a second factor too
    /// (`second_factor` says which).
    SecondFactorRequired = "second_factor_required",
    /// The caller's role does not allow it.
    Forbidden = "forbidden",
    /// Unknown, or not visible to the caller.
    NotFound = "not_found",
    /// Conflicts with the current state.
    Conflict = "conflict",
    /// Gone for good (an expired invitation).
    Gone = "gone",
    /// An e-mail could not be handed to the mail system.
    MailFailed = "mail_failed",
    /// The body is too large.
    TooLarge = "too_large",
    /// The range asked for is beyond the content.
    RangeNotSatisfiable = "range_not_satisfiable",
    /// Too many failed attempts; see `Retry-After`.
    TooManyRequests = "too_many_requests",
    /// An unsupported media type.
    UnsupportedMediaType = "unsupported_media_type",
    /// The server is busy; try again after `Retry-After`.
    Unavailable = "unavailable",
    /// The write would take the owner's storage beyond their quota.
    OverQuota = "over_quota",
    /// A fault of the server's own.
    Internal = "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Ok(ErrorCode::parse(&code))
    }
}

/// One change in the change stream. `seq` orders all changes; a client
/// resumes after the last `seq` it has applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub change: Change,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// An object was created, renamed or otherwise changed (or became visible).
    ObjectChanged { object: ObjectId },
    /// An object was deleted.
    ObjectDeleted { object: ObjectId },
    /// An entry of an object's feed changed; fetch the feed since the
    /// previous cursor to get it.
    EntryChanged { object: ObjectId, entry: String },
    /// A device of the user was enrolled or renamed.
    DeviceChanged { device: DeviceId },
    /// A device of the user was revoked.
    DeviceRevoked { device: DeviceId },
    /// A device came online or went offline.
    DevicePresence { device: DeviceId, online: bool },
    /// An object's member list changed (someone joined, left or got
    /// another role). A member removed gets `ObjectChanged` instead, and
    /// no longer sees the object.
    MembersChanged { object: ObjectId },
    /// The user was invited to an object, or an invitation to them was
    /// revoked.
    InvitationChanged { invitation: InvitationId },
    /// An object's awareness document changed: `entries` is all of it now.
    /// Updates are coalesced, so a device's quick succession of states may
    /// arrive as its last one only.
    AwarenessChanged {
        object: ObjectId,
        entries: Vec<AwarenessEntry>,
    },
    /// A news item was recorded, or grew by further changes (same `id`).
    NewsChanged { item: NewsItem },
    /// This app was revoked: the last thing its streams are told.
    AppRevoked { app: AppId },
}

impl Change {
    /// The kind of resource this change is about, and its object if any.
    pub fn topic(&self) -> (TopicKind, Option<ObjectId>) {
        match self {
            Change::ObjectChanged { object } | Change::ObjectDeleted { object } => {
                (TopicKind::Objects, Some(*object))
            }
            Change::EntryChanged { object, .. } => (TopicKind::Feed, Some(*object)),
            Change::MembersChanged { object } => (TopicKind::Members, Some(*object)),
            Change::AwarenessChanged { object, .. } => (TopicKind::Awareness, Some(*object)),
            Change::NewsChanged { item } => (TopicKind::News, item.object),
            Change::DeviceChanged { .. }
            | Change::DeviceRevoked { .. }
            | Change::DevicePresence { .. }
            | Change::AppRevoked { .. } => (TopicKind::Devices, None),
            Change::InvitationChanged { .. } => (TopicKind::Invitations, None),
        }
    }

    /// Whether this change moves its object's feed version (the feed's
    /// ETag): awareness and news do not.
    pub fn advances_object(&self) -> bool {
        !matches!(
            self,
            Change::AwarenessChanged { .. } | Change::NewsChanged { .. }
        )
    }
}

/// Sent instead of events when the requested cursor is older than what the
/// server retains: the client must re-read what it caches, then continue
/// from `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "resync")]
pub struct Resync {
    /// The cursor to continue from after re-reading.
    pub seq: u64,
    /// The oldest change the server still has.
    pub oldest: u64,
}

/// One message of the change stream (the `data:` of a Server-Sent Event, or
/// one WebSocket text message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamMessage {
    Resync(Resync),
    Event(Event),
}

/// What an entry of an account's audit log records: membership events
/// (the account invited, was invited, accepted, …) and the account's own
/// (a device signed in and enrolled, a device revoked, the password
/// changed). An action this build does not know reads as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Invited,
    Accepted,
    Declined,
    Revoked,
    RoleChanged,
    Removed,
    Left,
    DeviceEnrolled,
    DeviceRevoked,
    PasswordChanged,
    /// The account's second factor was turned on (or replaced).
    TotpEnabled,
    /// The account's second factor was turned off.
    TotpDisabled,
    AppAdded,
    AppRevoked,
    #[serde(other)]
    Unknown,
}

impl AuditAction {
    /// Every action this build knows, `Unknown` aside.
    pub const ALL: [AuditAction; 14] = [
        AuditAction::Invited,
        AuditAction::Accepted,
        AuditAction::Declined,
        AuditAction::Revoked,
        AuditAction::RoleChanged,
        AuditAction::Removed,
        AuditAction::Left,
        AuditAction::DeviceEnrolled,
        AuditAction::DeviceRevoked,
        AuditAction::PasswordChanged,
        AuditAction::TotpEnabled,
        AuditAction::TotpDisabled,
        AuditAction::AppAdded,
        AuditAction::AppRevoked,
    ];

    /// The action's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Invited => "invited",
            AuditAction::Accepted => "accepted",
            AuditAction::Declined => "declined",
            AuditAction::Revoked => "revoked",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::Removed => "removed",
            AuditAction::Left => "left",
            AuditAction::DeviceEnrolled => "device_enrolled",
            AuditAction::DeviceRevoked => "device_revoked",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::TotpEnabled => "totp_enabled",
            AuditAction::TotpDisabled => "totp_disabled",
            AuditAction::AppAdded => "app_added",
            AuditAction::AppRevoked => "app_revoked",
            AuditAction::Unknown => "unknown",
        }
    }

    /// The action named `s`; `Unknown` for a name this build does not know.
    pub fn parse(s: &str) -> AuditAction {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .unwrap_or(AuditAction::Unknown)
    }
}

/// One entry of `GET /v1/audit`, newest first; the next page is
/// `?before=` the last entry's `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub action: AuditAction,
    /// Who did it (an e-mail address); none when the server's administrator
    /// did (`meshd user passwd`).
    pub by: Option<String>,
    /// What it was done to: the e-mail address whose membership or
    /// invitation it is, the device's name, or the account's address.
    pub subject: String,
    /// The mesh object of a membership event, and its name.
    pub object: Option<ObjectId>,
    pub object_name: Option<String>,
    /// The device enrolled or revoked.
    pub device: Option<DeviceId>,
    /// The role granted, if any.
    pub role: Option<Role>,
    /// The second factor a sign-in (`device_enrolled`) gave besides the
    /// password, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<SecondFactor>,
}

/// `GET /v1/account/usage`: the bytes the account stores (distinct
/// chunks its objects refer to) and its quota (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUsage {
    pub used: u64,
    pub quota: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_codes_travel_as_their_strings() {
        let spelled: Vec<&str> = ErrorCode::KNOWN.iter().map(ErrorCode::as_str).collect();
        assert_eq!(
            spelled,
            [
                "bad_request",
                "missing_chunks",
                "unauthorized",
                "bad_credentials",
                "second_factor_required",
                "forbidden",
                "not_found",
                "conflict",
                "gone",
                "mail_failed",
                "too_large",
                "range_not_satisfiable",
                "too_many_requests",
                "unsupported_media_type",
                "unavailable",
                "over_quota",
                "internal",
            ]
        );
        for code in ErrorCode::KNOWN {
            let text = serde_json::to_string(code).unwrap();
            assert_eq!(text, format!("\"{code}\""));
            assert_eq!(&serde_json::from_str::<ErrorCode>(&text).unwrap(), code);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotFound,
                message: "not found".into(),
                second_factor: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"not found"}}"#
        );
    }

    #[test]
    fn audit_actions_have_one_spelling() {
        for action in AuditAction::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
            assert_eq!(AuditAction::parse(action.as_str()), action);
        }
        let later: AuditAction = serde_json::from_value(json!("webauthn_added")).unwrap();
        assert_eq!(later, AuditAction::Unknown);
        assert_eq!(AuditAction::parse("webauthn_added"), AuditAction::Unknown);
        for factor in [SecondFactor::Totp, SecondFactor::RecoveryCode] {
            assert_eq!(serde_json::to_value(factor).unwrap(), factor.as_str());
            assert_eq!(SecondFactor::parse(factor.as_str()), factor);
        }
        let later: SecondFactor = serde_json::from_value(json!("webauthn")).unwrap();
        assert_eq!(later, SecondFactor::Unknown);
    }

    #[test]
    fn an_unknown_error_code_still_reads() {
        let body: ErrorBody = serde_json::from_value(
            json!({"error": {"code": "quota_exceeded", "message": "over quota"}}),
        )
        .unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown("quota_exceeded".into()));
        assert_eq!(body.error.message, "over quota");
        // And travels on unchanged.
        assert_eq!(
            serde_json::to_value(&body).unwrap()["error"]["code"],
            "quota_exceeded"
        );
        assert!(
            serde_json::from_value::<ErrorBody>(json!({"error": {"code": 7, "message": ""}}))
                .is_err()
        );
    }
}
