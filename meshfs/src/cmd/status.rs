//! `meshfs status`: whether this device's mount runs and is online, its
//! cache and pinned bytes, the outbox, conflicts and the last fault. A
//! running mount answers through its root's [`user.mesh.status`](STATUS);
//! the outbox is read from the metadata cache, so it shows unmounted too.

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::HumanBytes;
use mesh_cli::display::escaped;
use serde::Serialize;
use std::path::PathBuf;

use crate::local::home::Home;
use crate::local::xattr;
use crate::mount::core::attrs::STATUS;
use crate::mount::core::status::{LastError, MountStatus, Outbox};
use crate::mount::meta;

#[derive(Serialize)]
struct Report {
    mounted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mountpoint: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    server: String,
    account: String,
    device: String,
    /// Present while mounted.
    #[serde(flatten)]
    mount: Option<MountStatus>,
    #[serde(flatten)]
    outbox: Outbox,
    /// Where changes that could no longer reach the server are kept.
    recovered: PathBuf,
}

pub fn status(home: &Home, running: Option<(i32, PathBuf)>, json: bool) -> anyhow::Result<()> {
    let account = home.require_account()?;
    let mount = match &running {
        Some((_, mountpoint)) => {
            let raw = xattr::get(mountpoint, STATUS).with_context(|| {
                format!(
                    "asking the mount at {} for its status",
                    mountpoint.display()
                )
            })?;
            Some(serde_json::from_slice(&raw).context("the mount's status is not valid")?)
        }
        None => None,
    };
    let conn = meta::open(&home.database())?;
    let report = Report {
        mounted: running.is_some(),
        pid: running.as_ref().map(|(pid, _)| *pid),
        mountpoint: running.map(|(_, at)| at),
        server: account.server,
        account: account.email,
        device: account.device_name,
        mount,
        outbox: Outbox::read(&conn)?,
        recovered: home.recovered(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report, Utc::now()));
    }
    Ok(())
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn human(r: &Report, now: DateTime<Utc>) -> String {
    let mut out = match (&r.mountpoint, &r.mount) {
        (Some(at), Some(m)) => {
            let state = if m.online { "online" } else { "OFFLINE" };
            let since = m
                .since
                .map(|t| format!(" since {}", when(t)))
                .unwrap_or_default();
            format!(
                "mounted at {} (process {})\nserver      {} — {state}{since}\n",
                escaped(&at.display().to_string()),
                r.pid.unwrap_or_default(),
                escaped(&r.server)
            )
        }
        _ => format!("not mounted\nserver      {}\n", escaped(&r.server)),
    };
    out += &format!(
        "account     {}, device {}\n",
        escaped(&r.account),
        escaped(&r.device)
    );
    if let Some(m) = &r.mount {
        out += &format!(
            "cache       {} of {} used\npinned      {} kept on this device\n",
            HumanBytes(m.cache_used),
            HumanBytes(m.cache_limit),
            HumanBytes(m.pinned_bytes)
        );
        match (m.storage_used, m.storage_quota) {
            (Some(used), Some(quota)) => {
                out += &format!(
                    "storage     {} of the quota of {} used on the server\n",
                    HumanBytes(used),
                    HumanBytes(quota)
                );
            }
            (Some(used), None) => {
                out += &format!(
                    "storage     {} used on the server, no quota\n",
                    HumanBytes(used)
                );
            }
            _ => {}
        }
        if m.over_quota {
            out += "quota       the account is over its storage quota: changes stay pending \
                    until space is freed or the quota is raised\n";
        }
    }
    let o = &r.outbox;
    out += &match (o.pending_changes, o.oldest_pending) {
        (0, _) => "pending     none: the server has every change\n".to_owned(),
        (n, Some(t)) => format!(
            "pending     {n} change{}, the oldest from {} s ago\n",
            if n == 1 { "" } else { "s" },
            (now - t).num_seconds().max(0)
        ),
        (n, None) => format!("pending     {n} changes\n"),
    };
    out += &format!(
        "conflicts   {} conflicted cop{} made on this device\n",
        o.conflicts_created,
        if o.conflicts_created == 1 { "y" } else { "ies" }
    );
    if o.recovered_files > 0 {
        out += &format!(
            "recovered   {} changed file{} kept in {} (they could no longer reach the server)\n",
            o.recovered_files,
            if o.recovered_files == 1 { "" } else { "s" },
            escaped(&r.recovered.display().to_string())
        );
    }
    if let Some(e) = r.mount.as_ref().and_then(|m| m.last_error.as_ref()) {
        out += &last_error(e, now);
    }
    out
}

/// How long a resolved fault still shows in the human status.
const RESOLVED_SHOWN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The last fault's line: while unresolved, with its time; once what
/// failed works again, as resolved, and for an hour only.
fn last_error(e: &LastError, now: DateTime<Utc>) -> String {
    match e.resolved {
        None => format!(
            "last error  {} ({} ago): {}\n",
            when(e.at),
            ago(now - e.at),
            escaped(&e.message)
        ),
        Some(resolved) if now - resolved < RESOLVED_SHOWN => format!(
            "last error  {} ago, resolved {} ago: {}\n",
            ago(now - e.at),
            ago(now - resolved),
            escaped(&e.message)
        ),
        Some(_) => String::new(),
    }
}

/// A time span as people say it: "12 s", "5 min", "3 h", "2 days".
fn ago(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => match s / 86400 {
            1 => "1 day".to_owned(),
            days => format!("{days} days"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn an_unresolved_error_shows_with_its_time() {
        let e = LastError {
            at: at("2026-12-02T10:00:00Z"),
            message: "the server is unreachable".into(),
            resolved: None,
        };
        assert_eq!(
            last_error(&e, at("2026-12-02T10:05:30Z")),
            "last error  2026-12-02 10:00:00 UTC (5 min ago): the server is unreachable\n"
        );
    }

    #[test]
    fn a_resolved_error_says_so_for_an_hour_then_goes() {
        let e = LastError {
            at: at("2026-12-02T10:00:00Z"),
            message: "the server is unreachable".into(),
            resolved: Some(at("2026-12-02T10:01:00Z")),
        };
        assert_eq!(
            last_error(&e, at("2026-12-02T10:05:00Z")),
            "last error  5 min ago, resolved 4 min ago: the server is unreachable\n"
        );
        assert_eq!(last_error(&e, at("2026-12-02T11:01:00Z")), "");
    }

    #[test]
    fn spans_read_as_people_say_them() {
        let span = chrono::TimeDelta::seconds;
        assert_eq!(ago(span(-3)), "0 s");
        assert_eq!(ago(span(59)), "59 s");
        assert_eq!(ago(span(60)), "1 min");
        assert_eq!(ago(span(7200)), "2 h");
        assert_eq!(ago(span(86400)), "1 day");
        assert_eq!(ago(span(3 * 86400)), "3 days");
    }
}
