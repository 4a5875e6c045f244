//! `meshfs devices`: the user's device ring — each device with its name,
//! whether it is online now, when it was last seen and which one is this —
//! and `meshfs devices remove NAME`, which signs a device out everywhere
//! (its mount stops syncing and says so).

use anyhow::Context;
use mesh_cli::display::escaped;
use mesh_protocol::api::Device;

use crate::cmd::session::Session;
use crate::local::home::Home;

pub fn list(home: &Home, json: bool) -> anyhow::Result<()> {
    let session = Session::open(home)?;
    let devices = session
        .run(session.remote.devices())
        .context("listing this account's devices")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    for d in &devices {
        let seen = match (d.online, d.last_seen) {
            (true, _) => "online".to_owned(),
            (false, Some(t)) => format!("offline, last seen {}", t.format("%Y-%m-%d %H:%M UTC")),
            (false, None) => "offline, never seen".to_owned(),
        };
        let this = if d.current { "  (this device)" } else { "" };
        println!("{:<24} {seen}{this}", escaped(&d.name));
    }
    Ok(())
}

pub fn remove(home: &Home, name: &str) -> anyhow::Result<()> {
    let session = Session::open(home)?;
    let devices = session.run(session.remote.devices())?;
    let named: Vec<&Device> = devices.iter().filter(|d| d.name == name).collect();
    let device = match named.as_slice() {
        [one] => *one,
        [] => anyhow::bail!("no device of this account is called {name:?} (see `meshfs devices`)"),
        _ => anyhow::bail!(
            "{} devices are called {name:?}; rename one first",
            named.len()
        ),
    };
    session
        .run(session.remote.revoke_device(device.id))
        .with_context(|| format!("removing {name:?}"))?;
    if device.current {
        println!("removed {name:?}: this device is signed out now");
    } else {
        println!("removed {name:?}: it is signed out and its mount stops syncing");
    }
    Ok(())
}
