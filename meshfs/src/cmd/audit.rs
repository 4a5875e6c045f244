//! `meshfs audit`: this account's audit log, newest first — devices that
//! signed in (enrolled, and with which second factor) or were signed out,
//! password changes, the second factor turned on or off, and the
//! membership events the account did or that concern its address — one
//! line each, or `--json`; `--before ID` pages back.

use anyhow::Context;
use mesh_cli::display::escaped;
use mesh_protocol::api::{AuditAction, AuditEntry, SecondFactor};

use crate::cmd::session::Session;
use crate::local::home::Home;

pub fn audit(home: &Home, before: Option<u64>, limit: u32, json: bool) -> anyhow::Result<()> {
    let session = Session::open(home)?;
    let entries = session
        .run(session.remote.audit(before, limit))
        .context("reading this account's audit log")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    for e in &entries {
        println!(
            "{:>6}  {}  {}",
            e.id,
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            escaped(&sentence(e))
        );
    }
    if entries.len() as u32 == limit
        && let Some(last) = entries.last()
    {
        println!("(older entries: meshfs audit --before {})", last.id);
    }
    Ok(())
}

/// What an entry says, as a sentence.
fn sentence(e: &AuditEntry) -> String {
    let by = e.by.as_deref().unwrap_or("the server's administrator");
    let object = e.object_name.as_deref().unwrap_or("a deleted object");
    let role = e.role.map_or("", |r| r.as_str());
    let subject = &e.subject;
    match e.action {
        AuditAction::DeviceEnrolled => {
            let with = match e.second_factor {
                None => "",
                Some(SecondFactor::Totp) => " with an authentication code",
                Some(SecondFactor::RecoveryCode) => " with a recovery code",
                Some(SecondFactor::Unknown) => " with a second factor",
            };
            format!("device {subject:?} signed in{with} (by {by})")
        }
        AuditAction::DeviceRevoked => format!("device {subject:?} signed out by {by}"),
        AuditAction::PasswordChanged => format!("the password of {subject} changed by {by}"),
        AuditAction::TotpEnabled => {
            format!("{by} made signing in to {subject} need an authentication code")
        }
        AuditAction::TotpDisabled => {
            format!("{by} let {subject} sign in without an authentication code")
        }
        AuditAction::AppAdded => format!("app {subject:?} added by {by}"),
        AuditAction::AppRevoked => format!("app {subject:?} revoked by {by}"),
        AuditAction::Invited => format!("{by} invited {subject} to {object:?} as {role}"),
        AuditAction::Accepted => format!("{subject} accepted the invitation to {object:?}"),
        AuditAction::Declined => format!("{subject} declined the invitation to {object:?}"),
        AuditAction::Revoked => {
            format!("{by} revoked the invitation of {subject} to {object:?}")
        }
        AuditAction::RoleChanged => format!("{by} made {subject} {role} of {object:?}"),
        AuditAction::Removed => format!("{by} removed {subject} from {object:?}"),
        AuditAction::Left => format!("{subject} left {object:?}"),
        AuditAction::Unknown => format!("{by}: an event this meshfs does not know, on {subject}"),
    }
}
