//! Sharing from the command line: `meshfs share`, `unshare`, `members`,
//! `invitations`, `accept` and `decline`. A Live Folder is named by its
//! path in the mount (see `crate::cmd::place`); the calls go to the server with
//! this device's token.

use anyhow::Context;
use mesh_cli::display::escaped;
use mesh_protocol::api::{Invitation, InvitationId, Member, MemberKind, Role, ShareOutcome};
use serde::Serialize;
use std::path::Path;

use crate::client::RemoteError;
use crate::cmd::place::folder_at;
use crate::cmd::session::Session;
use crate::local::home::Home;

/// The name of the folder at `path`, for messages.
fn folder_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub fn share(home: &Home, path: &Path, email: &str, role: Role) -> anyhow::Result<()> {
    let object = folder_at(path)?;
    let session = Session::open(home)?;
    let name = folder_name(path);
    match session
        .run(session.remote.share(object, email, role))
        .with_context(|| format!("sharing {name} with {email}"))?
    {
        ShareOutcome::RoleChanged { member } => {
            println!(
                "{}",
                escaped(&format!(
                    "{} is now {} of {name}",
                    member.email,
                    article(member.role)
                ))
            )
        }
        ShareOutcome::Invited { invitation } => println!(
            "{}",
            escaped(&format!(
                "invited {} to {name} as {}; the invitation (id {}) expires {}",
                invitation.email,
                invitation.role.as_str(),
                invitation.id,
                invitation.expires.format("%Y-%m-%d %H:%M UTC")
            ))
        ),
    }
    Ok(())
}

fn article(role: Role) -> String {
    match role {
        Role::Owner => "an owner".into(),
        Role::Editor => "an editor".into(),
        Role::Reader => "a reader".into(),
    }
}

/// Ends `email`'s access to the folder: removes the member, or revokes a
/// pending invitation.
pub fn unshare(home: &Home, path: &Path, email: &str) -> anyhow::Result<()> {
    let object = folder_at(path)?;
    let session = Session::open(home)?;
    let name = folder_name(path);
    let members = session.run(session.remote.members(object))?;
    if let Some(member) = members.iter().find(|m| m.email.eq_ignore_ascii_case(email)) {
        session
            .run(session.remote.remove_member(object, member.user))
            .with_context(|| format!("removing {email} from {name}"))?;
        println!(
            "{}",
            escaped(&format!("{email} is no longer a member of {name}"))
        );
        return Ok(());
    }
    let invitations = session
        .run(session.remote.object_invitations(object))
        .with_context(|| format!("listing the invitations to {name}"))?;
    let pending = invitations.iter().find(|i| {
        i.email.eq_ignore_ascii_case(email)
            && i.state == mesh_protocol::api::InvitationState::Pending
    });
    match pending {
        Some(invitation) => {
            session.run(session.remote.revoke(invitation.id))?;
            println!(
                "{}",
                escaped(&format!("revoked the invitation of {email} to {name}"))
            );
            Ok(())
        }
        None => anyhow::bail!("{email} is neither a member of nor invited to {name}"),
    }
}

#[derive(Serialize)]
struct MemberList {
    members: Vec<Member>,
    /// Pending invitations, for the folder's owners.
    #[serde(skip_serializing_if = "Option::is_none")]
    invitations: Option<Vec<Invitation>>,
}

pub fn members(home: &Home, path: &Path, json: bool) -> anyhow::Result<()> {
    let object = folder_at(path)?;
    let session = Session::open(home)?;
    let members = session.run(session.remote.members(object))?;
    let invitations = match session.run(session.remote.object_invitations(object)) {
        Ok(all) => Some(
            all.into_iter()
                .filter(|i| i.state == mesh_protocol::api::InvitationState::Pending)
                .collect(),
        ),
        // Only owners see invitations.
        Err(RemoteError::Forbidden(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let list = MemberList {
        members,
        invitations,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for m in &list.members {
        let who = match m.kind {
            MemberKind::User => format!("{} ({})", m.email, m.name),
            MemberKind::App => format!("app {:?} of {}", m.name, m.email),
        };
        println!("{:<7} {}", m.role.as_str(), escaped(&who));
    }
    for i in list.invitations.iter().flatten() {
        println!(
            "{:<7} {} (invited, expires {})",
            i.role.as_str(),
            escaped(&i.email),
            i.expires.format("%Y-%m-%d")
        );
    }
    Ok(())
}

pub fn invitations(home: &Home, json: bool) -> anyhow::Result<()> {
    let session = Session::open(home)?;
    let list = session.run(session.remote.my_invitations())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no pending invitations");
    }
    for i in &list {
        let with = match i.app {
            Some(app) => format!("your app {app}"),
            None => "you".to_owned(),
        };
        println!(
            "{}  {} shares “{}” with {with} as {} (expires {})",
            i.id,
            escaped(&i.invited_by),
            escaped(&i.object_name),
            i.role.as_str(),
            i.expires.format("%Y-%m-%d")
        );
    }
    Ok(())
}

/// `ID` from `meshfs invitations`, or the link of the invitation e-mail.
pub fn accept(home: &Home, invitation: &str) -> anyhow::Result<()> {
    let session = Session::open(home)?;
    let object = match invitation.parse::<InvitationId>() {
        Ok(id) => session.run(session.remote.accept(id)),
        Err(_) => {
            let token = invitation.rsplit('/').next().unwrap_or(invitation);
            session.run(session.remote.accept_token(token))
        }
    }
    .context("accepting the invitation")?;
    println!(
        "accepted: “{}” from {} is in your mesh now (you are {})",
        escaped(&object.name),
        escaped(&object.owner_email),
        article(object.role)
    );
    Ok(())
}

pub fn decline(home: &Home, id: &str) -> anyhow::Result<()> {
    let id: InvitationId = id
        .parse()
        .with_context(|| format!("{id:?} is not an invitation id (see `meshfs invitations`)"))?;
    let session = Session::open(home)?;
    session
        .run(session.remote.decline(id))
        .context("declining the invitation")?;
    println!("declined");
    Ok(())
}
