//! Keeping the device token safe. Where an OS keyring is usable (the Secret
//! Service of a desktop session) the token goes there; otherwise — a
//! headless machine, where the kernel keyring forgets everything at reboot —
//! into a file only the user can read, so a mount comes back after a reboot
//! without asking again.

use anyhow::Context;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use crate::local::home::{Account, Home, write_private};

const SERVICE: &str = "meshfs";

/// Where the token was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vault {
    Keyring,
    File,
}

impl std::fmt::Display for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Vault::Keyring => "the Secret Service keyring",
            Vault::File => "a file only you can read",
        })
    }
}

/// The key under which a device's token is kept in the keyring.
fn key(account: &Account) -> String {
    format!("{} {} {}", account.server, account.email, account.device_id)
}

/// The keyring entry for `account`, when this session has a usable Secret
/// Service (a desktop session's D-Bus with a keyring daemon).
fn keyring_entry(account: &Account) -> Option<keyring_core::Entry> {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS")?;
    let store: Arc<keyring_core::CredentialStore> =
        zbus_secret_service_keyring_store::Store::new().ok()?;
    keyring_core::Entry::new_in_store(&store, SERVICE, &key(account)).ok()
}

/// Keeps `token` for `account`, in the keyring if one works, else in the
/// token file.
pub fn store(home: &Home, account: &Account, token: &str) -> anyhow::Result<Vault> {
    if let Some(e) = keyring_entry(account)
        && e.set_password(token).is_ok()
    {
        let _ = std::fs::remove_file(home.token_file());
        return Ok(Vault::Keyring);
    }
    write_private(&home.token_file(), token.as_bytes())?;
    Ok(Vault::File)
}

/// The token for `account`.
pub fn load(home: &Home, account: &Account) -> anyhow::Result<String> {
    let path = home.token_file();
    match std::fs::metadata(&path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                anyhow::bail!(
                    "{} can be read by others; refusing to use it. Run `chmod 600` on it or sign in again",
                    path.display()
                );
            }
            // SAFETY: getuid has no preconditions and cannot fail.
            if meta.uid() != unsafe { libc::getuid() } {
                anyhow::bail!("{} belongs to another user; sign in again", path.display());
            }
            let token = std::fs::read_to_string(&path).context("reading the token file")?;
            Ok(token.trim().to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(e) = keyring_entry(account)
                && let Ok(token) = e.get_password()
            {
                return Ok(token);
            }
            anyhow::bail!("no token for this device; run `meshfs login` again")
        }
        Err(e) => Err(e).context("reading the token file"),
    }
}

/// Forgets the token everywhere it may be kept.
pub fn forget(home: &Home, account: &Account) -> anyhow::Result<()> {
    if let Some(e) = keyring_entry(account) {
        let _ = e.delete_credential();
    }
    match std::fs::remove_file(home.token_file()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).context("removing the token file")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            server: "http://127.0.0.1:1".into(),
            email: "ann@example.org".into(),
            user_id: "u".into(),
            device_id: "d".into(),
            device_name: "laptop".into(),
            fingerprint: None,
        }
    }

    #[test]
    fn the_token_file_is_private_and_refused_when_it_is_not() {
        // SAFETY: tests in this module do not read the variable concurrently.
        unsafe { std::env::remove_var("DBUS_SESSION_BUS_ADDRESS") };
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path())).unwrap();
        home.create().unwrap();
        assert_eq!(
            store(&home, &account(), "mesh_secret").unwrap(),
            Vault::File
        );
        let mode = std::fs::metadata(home.token_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&home, &account()).unwrap(), "mesh_secret");
        std::fs::set_permissions(home.token_file(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = load(&home, &account()).unwrap_err().to_string();
        assert!(err.contains("read by others"), "{err}");
        forget(&home, &account()).unwrap();
        assert!(load(&home, &account()).is_err());
        forget(&home, &account()).unwrap();
    }
}
