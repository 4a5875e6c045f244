//! Where one device's state lives. `MESHFS_HOME` (or `--home DIR`) puts all
//! of it in one directory, so several devices run side by side on one
//! machine; otherwise it follows the XDG base directories.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The directories of one device.
#[derive(Debug, Clone)]
pub struct Home {
    /// `account.json` and the credentials file.
    pub config: PathBuf,
    /// The metadata database and staged content.
    pub data: PathBuf,
    /// The chunk cache.
    pub cache: PathBuf,
    /// The mount daemon's pid file and log.
    pub runtime: PathBuf,
}

impl Home {
    /// `--home DIR` / `MESHFS_HOME`, or the XDG directories.
    pub fn resolve(explicit: Option<&Path>) -> anyhow::Result<Home> {
        if let Some(dir) = explicit {
            let dir = std::path::absolute(dir)?;
            return Ok(Home {
                config: dir.clone(),
                data: dir.clone(),
                cache: dir.join("cache"),
                runtime: dir,
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "meshfs")
            .context("no home directory; give --home DIR or set MESHFS_HOME")?;
        Ok(Home {
            config: dirs.config_dir().to_owned(),
            data: dirs.data_dir().to_owned(),
            cache: dirs.cache_dir().to_owned(),
            runtime: dirs
                .runtime_dir()
                .map(|d| d.to_owned())
                .unwrap_or_else(|| dirs.data_dir().join("run")),
        })
    }

    /// Creates the directories, readable only by their owner (0700, see
    /// `mesh_cli::private`, through which every file of the home is made).
    pub fn create(&self) -> anyhow::Result<()> {
        for dir in [&self.config, &self.data, &self.cache, &self.runtime] {
            mesh_cli::private::create_dir(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(())
    }

    /// The settings file (`config.toml`), read by `meshfs` at start.
    pub fn config_file(&self) -> PathBuf {
        self.config.join("config.toml")
    }

    pub fn account_file(&self) -> PathBuf {
        self.config.join("account.json")
    }

    pub fn token_file(&self) -> PathBuf {
        self.config.join("token")
    }

    pub fn database(&self) -> PathBuf {
        self.data.join("meta.sqlite3")
    }

    pub fn staging(&self) -> PathBuf {
        self.data.join("staging")
    }

    /// Where local changes that could no longer reach the server are kept
    /// (a folder unshared, or made read-only, before they were pushed).
    pub fn recovered(&self) -> PathBuf {
        self.data.join("recovered")
    }

    pub fn chunks(&self) -> PathBuf {
        self.cache.join("chunks")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.runtime.join("meshfs.pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.data.join("meshfs.log")
    }

    /// The signed-in account, if any.
    pub fn account(&self) -> anyhow::Result<Option<Account>> {
        match std::fs::read(self.account_file()) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is damaged; sign in again",
                    self.account_file().display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading the account"),
        }
    }

    /// The signed-in account, or a clear error that says how to sign in.
    pub fn require_account(&self) -> anyhow::Result<Account> {
        self.account()?
            .context("not signed in: run `meshfs login URL --email EMAIL` first")
    }

    pub fn save_account(&self, account: &Account) -> anyhow::Result<()> {
        write_private(&self.account_file(), &serde_json::to_vec_pretty(account)?)
    }
}

/// Who this device is: the server, the account and the device's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub server: String,
    pub email: String,
    pub user_id: String,
    pub device_id: String,
    pub device_name: String,
    /// The SHA-256 fingerprint of the server's certificate this device
    /// trusts instead of the system's roots (see `client::tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl Account {
    /// The pinned certificate fingerprint, if any.
    pub fn pin(&self) -> anyhow::Result<Option<mesh_cli::fingerprint::Fingerprint>> {
        self.fingerprint
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("the account file's pinned certificate fingerprint is damaged; sign in again")
    }
}

/// Writes a file only its owner can read, atomically
/// (`mesh_cli::private::write_atomic`).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    mesh_cli::private::write_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}
