//! The account's storage on the server as the mount last heard of it: what
//! the user's objects store and their quota (what `df` on the mount
//! shows), and whether the server refused a push for the quota (said once
//! in the log, and in `meshfs status`, until a push goes through again).
//! The changes stay pending meanwhile; nothing is lost.

use mesh_protocol::api::{AccountUsage, ErrorCode};
use std::sync::Mutex;

use super::Core;
use crate::client::RemoteError;
use crate::mount::error::FsError;

/// The block size `statfs` counts in.
pub const BLOCK: u64 = 4096;

#[derive(Default)]
struct State {
    usage: Option<AccountUsage>,
    over_quota: bool,
}

#[derive(Default)]
pub struct Storage {
    state: Mutex<State>,
}

/// What `df` shows: blocks of [`BLOCK`] bytes in all, and free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub blocks: u64,
    pub free: u64,
}

/// Whether `e` is the server refusing a write for the owner's quota.
pub fn is_over_quota(e: &FsError) -> bool {
    matches!(
        e,
        FsError::Remote(RemoteError::Refused {
            code: ErrorCode::OverQuota,
            ..
        })
    )
}

impl Storage {
    pub fn set_usage(&self, usage: AccountUsage) {
        self.state.lock().expect("storage").usage = Some(usage);
    }

    pub fn usage(&self) -> Option<AccountUsage> {
        self.state.lock().expect("storage").usage
    }

    pub fn over_quota(&self) -> bool {
        self.state.lock().expect("storage").over_quota
    }

    /// A push was refused for the quota (`e`): logged the first time.
    pub fn refused(&self, e: &FsError) {
        let mut state = self.state.lock().expect("storage");
        if !state.over_quota {
            state.over_quota = true;
            tracing::warn!(
                error = %e,
                "the account is over its storage quota on the server; changes stay pending \
                 on this device until space is freed or the quota is raised"
            );
        }
    }

    /// A push went through: no longer over the quota, if it was.
    pub fn accepted(&self) {
        let mut state = self.state.lock().expect("storage");
        if state.over_quota {
            state.over_quota = false;
            tracing::info!("the server accepts changes again: the account is within its quota");
        }
    }

    /// The quota as the size and what is left of it as free, when the
    /// server sets one; otherwise plenty of room (a network drive has no
    /// fixed size).
    pub fn capacity(&self) -> Capacity {
        match self.usage() {
            Some(AccountUsage {
                used,
                quota: Some(quota),
            }) => Capacity {
                blocks: quota / BLOCK,
                free: quota.saturating_sub(used) / BLOCK,
            },
            _ => Capacity {
                blocks: 1 << 32,
                free: 1 << 32,
            },
        }
    }
}

impl Core {
    /// What `statfs` (`df`) shows of the mount.
    pub fn capacity(&self) -> Capacity {
        self.storage.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_the_size_and_what_is_left_is_free() {
        let s = Storage::default();
        assert_eq!(s.capacity().blocks, 1 << 32, "no usage heard yet");
        s.set_usage(AccountUsage {
            used: 10 * BLOCK,
            quota: None,
        });
        assert_eq!(s.capacity().free, 1 << 32, "no quota");
        s.set_usage(AccountUsage {
            used: 10 * BLOCK,
            quota: Some(100 * BLOCK),
        });
        assert_eq!(
            s.capacity(),
            Capacity {
                blocks: 100,
                free: 90
            }
        );
        s.set_usage(AccountUsage {
            used: 200 * BLOCK,
            quota: Some(100 * BLOCK),
        });
        assert_eq!(s.capacity().free, 0, "over the quota");
    }
}
