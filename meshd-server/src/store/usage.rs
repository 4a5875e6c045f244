//! Storage used and allowed per user. A user's usage is the bytes of the
//! distinct chunks that entries of the objects they own refer to: a chunk
//! counts once however many entries, versions or objects of theirs refer
//! to it, writes by members count against the object's owner, and chunks
//! uploaded but not (or no longer) referred to count for nobody (the
//! collector frees them after the grace period). The quota is the user's
//! own or, without one, the server's default. The database keeps the usage
//! up to date itself (triggers on `chunk_refs`, in the migration), in the
//! transaction that changes the references, so reading it costs one row.

pub use mesh_protocol::api::AccountUsage as Usage;
use mesh_protocol::api::UserId;
use mesh_protocol::content::Hash;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::HashSet;

/// A user's own quota setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// The server's `default-quota` applies.
    Default,
    /// No limit, whatever the default.
    Unlimited,
    Bytes(u64),
}

impl Quota {
    fn from_column(value: Option<i64>) -> Quota {
        match value {
            None => Quota::Default,
            Some(n) if n < 0 => Quota::Unlimited,
            Some(n) => Quota::Bytes(n as u64),
        }
    }

    fn to_column(self) -> Option<i64> {
        match self {
            Quota::Default => None,
            Quota::Unlimited => Some(-1),
            Quota::Bytes(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }

    /// The limit in bytes this setting gives with the server's `default`.
    pub fn limit(self, default: Option<u64>) -> Option<u64> {
        match self {
            Quota::Default => default,
            Quota::Unlimited => None,
            Quota::Bytes(n) => Some(n),
        }
    }
}

/// The bytes of distinct chunks referred to by the objects `user` owns
/// (kept by the database's triggers on `chunk_refs`; 0 for an unknown
/// user).
pub fn used(conn: &Connection, user: UserId) -> rusqlite::Result<u64> {
    let used: Option<i64> = conn
        .prepare_cached("SELECT used FROM users WHERE id = ?1")?
        .query_row([user.to_string()], |r| r.get(0))
        .optional()?;
    Ok(used.unwrap_or(0).max(0) as u64)
}

/// `user`'s own quota setting (`Default` for an unknown user).
pub fn quota(conn: &Connection, user: UserId) -> rusqlite::Result<Quota> {
    let value: Option<Option<i64>> = conn
        .prepare_cached("SELECT quota FROM users WHERE id = ?1")?
        .query_row([user.to_string()], |r| r.get(0))
        .optional()?;
    Ok(Quota::from_column(value.flatten()))
}

pub fn set_quota(tx: &Transaction<'_>, user: UserId, quota: Quota) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE users SET quota = ?2 WHERE id = ?1",
        params![user.to_string(), quota.to_column()],
    )?;
    Ok(())
}

/// `user`'s usage and limit, with the server's `default`.
pub fn of(conn: &Connection, user: UserId, default: Option<u64>) -> rusqlite::Result<Usage> {
    Ok(Usage {
        used: used(conn, user)?,
        quota: quota(conn, user)?.limit(default),
    })
}

/// Whether storing `chunks` (hash and size) for `owner` would take them
/// beyond their limit: `Err` with the usage it would reach. A chunk they
/// store already, or one named twice, adds nothing more. (A check before
/// bytes are stored; the post that refers to them is checked again in its
/// transaction.)
pub fn check_chunks(
    conn: &Connection,
    owner: UserId,
    chunks: &[(Hash, u64)],
    default: Option<u64>,
) -> rusqlite::Result<Result<(), Usage>> {
    let Some(limit) = quota(conn, owner)?.limit(default) else {
        return Ok(Ok(()));
    };
    let mut stored = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM usage_chunks WHERE user_id = ?1 AND hash = ?2)",
    )?;
    let mut counted = HashSet::new();
    let mut added = 0;
    for (hash, size) in chunks {
        if !counted.insert(hash)
            || stored.query_row(params![owner.to_string(), hash.to_hex()], |r| r.get(0))?
        {
            continue;
        }
        added += size;
    }
    let after = used(conn, owner)? + added;
    Ok(if added > 0 && after > limit {
        Err(Usage {
            used: after,
            quota: Some(limit),
        })
    } else {
        Ok(())
    })
}

/// Guards one write transaction that may add to what `owner` stores:
/// taken before the change, checked after it, inside the same
/// transaction, so two writes can never both pass the limit. A change that
/// does not add to the usage always passes (so an account over its quota
/// can still remove things).
pub struct Guard {
    owner: UserId,
    before: u64,
    limit: u64,
}

impl Guard {
    /// `None` when `owner` has no limit: nothing to check.
    pub fn take(
        conn: &Connection,
        owner: UserId,
        default: Option<u64>,
    ) -> rusqlite::Result<Option<Guard>> {
        let Some(limit) = quota(conn, owner)?.limit(default) else {
            return Ok(None);
        };
        Ok(Some(Guard {
            owner,
            before: used(conn, owner)?,
            limit,
        }))
    }

    /// After the change: `Err` with the usage it would reach when that is
    /// beyond the limit and more than before.
    pub fn check(&self, conn: &Connection) -> rusqlite::Result<Result<(), Usage>> {
        let after = used(conn, self.owner)?;
        Ok(if after > self.limit && after > self.before {
            Err(Usage {
                used: after,
                quota: Some(self.limit),
            })
        } else {
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use rand::Rng;

    /// The usage summed from scratch, as the triggers must keep it.
    fn summed(conn: &Connection, user: &str) -> u64 {
        conn.query_row(
            "SELECT coalesce(sum(c.size), 0) FROM chunks c WHERE c.hash IN (
                 SELECT r.hash FROM chunk_refs r JOIN objects o ON o.id = r.object_id
                 WHERE o.owner = ?1)",
            [user],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as u64
    }

    #[test]
    fn the_kept_usage_is_the_sum_of_distinct_chunks_after_any_changes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let users: Vec<UserId> = (0..2).map(|_| UserId::generate()).collect();
        db.write_blocking(|tx| {
            for (i, user) in users.iter().enumerate() {
                tx.execute(
                    "INSERT INTO users (id, email, name, password_hash, created)
                     VALUES (?1, ?2, 'n', 'h', 0)",
                    params![user.to_string(), format!("u{i}@example.org")],
                )?;
                for o in 0..2 {
                    tx.execute(
                        "INSERT INTO objects (id, kind, name, owner, created, updated, seq)
                         VALUES (?1, 'folder', 'F', ?2, 0, 0, 0)",
                        params![format!("o{i}{o}"), user.to_string()],
                    )?;
                }
            }
            for c in 0..8 {
                tx.execute(
                    "INSERT INTO chunks (hash, size, stored) VALUES (?1, ?2, 0)",
                    params![format!("h{c}"), 100 + c],
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .unwrap();
        let mut rng = rand::rng();
        for _ in 0..500 {
            let object = format!("o{}{}", rng.random_range(0..2), rng.random_range(0..2));
            let entry = format!("e{}", rng.random_range(0..4));
            let hash = format!("h{}", rng.random_range(0..8));
            db.write_blocking(|tx| {
                if rng.random_bool(0.6) {
                    tx.execute(
                        "INSERT OR IGNORE INTO chunk_refs (object_id, sync_id, hash)
                         VALUES (?1, ?2, ?3)",
                        params![object, entry, hash],
                    )?;
                } else if rng.random_bool(0.9) {
                    tx.execute(
                        "DELETE FROM chunk_refs WHERE object_id = ?1 AND sync_id = ?2",
                        params![object, entry],
                    )?;
                } else {
                    tx.execute("DELETE FROM chunk_refs WHERE object_id = ?1", [&object])?;
                }
                for user in &users {
                    assert_eq!(used(tx, *user)?, summed(tx, &user.to_string()));
                }
                Ok::<_, rusqlite::Error>(())
            })
            .unwrap();
        }
    }
}
