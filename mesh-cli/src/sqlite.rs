//! A local SQLite database opened the way both programs want it: created if
//! absent, in WAL mode (readers run beside the writer), with a busy timeout,
//! `synchronous = NORMAL` and foreign keys enforced, and its schema brought
//! up to date by numbered migrations that `PRAGMA user_version` counts.
//! meshd keeps its database this way, meshfs its metadata cache. The
//! database is made 0600 before SQLite opens it, and SQLite gives its
//! `-wal`, `-shm` and `-journal` files the database's mode. A writer may
//! leave checkpoints to a [`Checkpointer`] thread.

use rusqlite::Connection;
use rusqlite::config::DbConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a connection waits for another one's lock before it gives up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A database's schema as its migrations, applied in order; `user_version`
/// records how many ran. Never edit one that has shipped: add a new one.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The program whose schema it is (`meshd`), named when a database
    /// from a newer version of it is refused.
    pub program: &'static str,
    pub migrations: &'static [&'static str],
}

/// A database that cannot be opened or brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("opening {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("making {} private to its user", path.display())]
    Private {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has a negative schema version ({version})", path.display())]
    NegativeVersion { path: PathBuf, version: i64 },
    /// Written by a newer version of the program: its schema has more
    /// migrations than this one knows.
    #[error(
        "{} has schema version {found}, newer than this {program} knows ({known}); \
         use a newer {program}",
        path.display()
    )]
    Newer {
        path: PathBuf,
        found: usize,
        known: usize,
        program: &'static str,
    },
    #[error("{}: applying migration {version}", path.display())]
    Migration {
        path: PathBuf,
        /// The version the migration leads to (1 for the first).
        version: usize,
        #[source]
        source: rusqlite::Error,
    },
}

/// Creates the database file 0600 if it is missing (SQLite then creates
/// its companion files with that mode), and makes it and its companions
/// 0600 if an earlier version left them open to others.
fn make_private(path: &Path) -> std::io::Result<()> {
    crate::private::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        crate::private::restrict(Path::new(&companion), crate::private::FILE_MODE)?;
    }
    Ok(())
}

/// How many prepared statements a connection keeps: more than a program's
/// hot paths use, so that none is parsed again on every call (rusqlite
/// keeps 16 by default; a meshfs create alone runs about a dozen).
const STATEMENTS: usize = 128;

/// The settings every connection to the database needs, whether it writes
/// or only reads: the busy timeout, foreign keys enforced,
/// `synchronous = NORMAL` (safe with WAL), a statement cache of
/// [`STATEMENTS`], and the query planner's stability guarantee.
///
/// Without that guarantee SQLite (3.54) plans `LIMIT ?` with the value
/// bound, and so compiles such a statement again every time a new value is
/// bound, which is every time a cached statement runs: in a profile of
/// meshd taking changes, 15 % of its CPU went to parsing again statements
/// already in the cache. The plans do not depend on the values here (no
/// `ANALYZE` statistics), so nothing is lost.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Opens (creating if needed) the database at `path` for writing,
/// [configures](configure) the connection, switches the database to WAL and
/// brings its schema up to date.
pub fn open(path: &Path, schema: &Schema) -> Result<Connection, SqliteError> {
    let failed = |source| SqliteError::Open {
        path: path.to_owned(),
        source,
    };
    make_private(path).map_err(|source| SqliteError::Private {
        path: path.to_owned(),
        source,
    })?;
    let mut conn = Connection::open(path).map_err(failed)?;
    configure(&conn).map_err(failed)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(failed)?;
    migrate(&mut conn, path, schema)?;
    Ok(conn)
}

/// How often a [`Checkpointer`] checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// How large a [`Checkpointer`]'s writer lets the log grow. The thread's
/// passive checkpoints never let the writer start the log again while
/// writes go on without a pause (they never catch up with the last one),
/// so under a long run of them the log grew without bound: 475 MB for
/// 18,000 files made in a mount. Past this size the writer checkpoints
/// once itself, after its commit: with no other writer meanwhile, that
/// one completes, and the next write starts the log again.
const LOG_LIMIT: i64 = 64 << 20;

/// Checkpoints a WAL database from a thread of its own, so that no write
/// waits for one: SQLite's automatic checkpoint runs inside the commit
/// that crosses its threshold and syncs the disk twice, which is a stall
/// in whatever request made that commit. While it runs, the writer's
/// connection makes none of its own until the log reaches [`LOG_LIMIT`]
/// (and truncates it to that size when it starts it again); the thread
/// checkpoints (`PASSIVE`: it never blocks the writer) every
/// [`CHECKPOINT_EVERY`], and once more when dropped. (SQLite checkpoints
/// and removes the log when the last connection closes.)
pub struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database `writer` writes; the writer makes
    /// no checkpoints of its own from now on.
    pub fn start(writer: &Connection) -> std::io::Result<Checkpointer> {
        let path = writer.path().filter(|p| !p.is_empty()).ok_or_else(|| {
            std::io::Error::other("an in-memory database has no log to checkpoint")
        })?;
        let conn = Connection::open(path)
            .and_then(|conn| configure(&conn).map(|()| conn))
            .map_err(std::io::Error::other)?;
        let page_size: i64 = writer
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(std::io::Error::other)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", LOG_LIMIT / page_size)
            .and_then(|()| writer.pragma_update(None, "journal_size_limit", LOG_LIMIT))
            .map_err(std::io::Error::other)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut done = stopped.lock().expect("checkpointer");
                // Said once when checkpoints start failing (a full disk),
                // and once when they work again.
                let mut failing = false;
                loop {
                    // The last round, once stopped, leaves little in the log.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Err(e) if !failing => {
                            tracing::warn!(error = %e, "checkpointing the database failed; will retry");
                            failing = true;
                        }
                        Ok(()) if failing => {
                            tracing::info!("checkpointing the database works again");
                            failing = false;
                        }
                        _ => {}
                    }
                    if *done {
                        return;
                    }
                    done = wake
                        .wait_timeout(done, CHECKPOINT_EVERY)
                        .expect("checkpointer")
                        .0;
                }
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *self.stop.0.lock().expect("checkpointer") = true;
        self.stop.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Applies the migrations the database (`conn`, at `path`) has not had,
/// each in a transaction of its own that also records the version it leads
/// to; refuses a database that has had more migrations than `schema` knows.
pub fn migrate(conn: &mut Connection, path: &Path, schema: &Schema) -> Result<(), SqliteError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| SqliteError::Open {
            path: path.to_owned(),
            source,
        })?;
    let found = usize::try_from(found).map_err(|_| SqliteError::NegativeVersion {
        path: path.to_owned(),
        version: found,
    })?;
    let known = schema.migrations.len();
    if found > known {
        return Err(SqliteError::Newer {
            path: path.to_owned(),
            found,
            known,
            program: schema.program,
        });
    }
    for (i, sql) in schema.migrations.iter().enumerate().skip(found) {
        let version = i + 1;
        apply(conn, sql, version).map_err(|source| SqliteError::Migration {
            path: path.to_owned(),
            version,
            source,
        })?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}

/// Runs one migration and records the version it leads to, all or nothing.
fn apply(conn: &mut Connection, sql: &str, version: usize) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(sql)?;
    tx.pragma_update(None, "user_version", version as i64)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "CREATE TABLE a (x INTEGER NOT NULL);";
    const V2: &str = "ALTER TABLE a ADD COLUMN y TEXT; CREATE TABLE b (z TEXT);";
    const OLD: Schema = Schema {
        program: "meshtest",
        migrations: &[V1],
    };
    const NEW: Schema = Schema {
        program: "meshtest",
        migrations: &[V1, V2],
    };

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    /// Rows of table `a` in the database file alone, without its log:
    /// what checkpoints have put there.
    fn checkpointed_rows(path: &Path) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy");
        std::fs::copy(path, &copy).unwrap();
        let conn = Connection::open(&copy).unwrap();
        conn.query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap_or(0)
    }

    #[test]
    fn a_cached_statement_is_not_compiled_again_for_each_new_value() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("db"), &OLD).unwrap();
        conn.execute_batch("INSERT INTO a (x) VALUES (1), (2), (3)")
            .unwrap();
        for limit in 1..=3_i64 {
            let mut stmt = conn
                .prepare_cached("SELECT x FROM a WHERE x >= ?1 ORDER BY x LIMIT ?2")
                .unwrap();
            let rows: Vec<i64> = stmt
                .query_map([limit, limit], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(rows.len() as i64, limit.min(4 - limit));
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "run {limit} compiled the statement again"
            );
        }
    }

    #[test]
    fn the_checkpointer_moves_the_log_into_the_database_instead_of_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path, &OLD).unwrap();
        let checkpointer = Checkpointer::start(&conn).unwrap();
        let auto: i64 = conn
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(
            auto * 4096,
            LOG_LIMIT,
            "the writer makes no checkpoints of its own short of the limit"
        );
        for t in 0..50 {
            let tx = conn.transaction().unwrap();
            for i in 0..100 {
                tx.execute("INSERT INTO a (x) VALUES (?1)", [t * 100 + i])
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        let start = std::time::Instant::now();
        while checkpointed_rows(&path) < 5000 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the rows did not reach the database file"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(checkpointer);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 5000);
    }

    #[test]
    fn the_log_stays_bounded_while_writes_never_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open(&path, &NEW).unwrap();
        let checkpointer = Checkpointer::start(&conn).unwrap();
        let log = dir.path().join("db-wal");
        let mut largest = 0;
        // 256 MiB of pages, four times the limit, with no pause between
        // the transactions; the database itself stays at 8 MiB.
        for i in 0..256 {
            let tx = conn.transaction().unwrap();
            tx.execute(
                "INSERT OR REPLACE INTO b (rowid, z) VALUES (?1, randomblob(1048576))",
                [i % 8],
            )
            .unwrap();
            tx.commit().unwrap();
            largest = largest.max(std::fs::metadata(&log).unwrap().len());
        }
        drop(checkpointer);
        assert!(
            largest < 3 * LOG_LIMIT as u64,
            "the log grew to {largest} bytes (limit {LOG_LIMIT})"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM b", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 8);
    }

    #[test]
    fn a_fresh_database_gets_every_migration_and_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("db"), &NEW).unwrap();
        assert_eq!(version(&conn), 2);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 'one')", [])
            .unwrap();
        conn.execute("INSERT INTO b (z) VALUES ('z')", []).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let keys: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert!(keys);
        // Reopening applies nothing again.
        drop(conn);
        let conn = open(&dir.path().join("db"), &NEW).unwrap();
        assert_eq!(version(&conn), 2);
    }

    #[test]
    fn the_database_and_its_companion_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = open(&path, &NEW).unwrap();
        conn.execute("INSERT INTO b (z) VALUES ('z')", []).unwrap();
        let wal = dir.path().join("db-wal");
        let shm = dir.path().join("db-shm");
        assert_eq!((mode(&path), mode(&wal), mode(&shm)), (0o600, 0o600, 0o600));
        drop(conn);
        // A database an earlier version left readable by all is made private.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open(&path, &NEW).unwrap());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn an_older_database_gets_the_migrations_it_lacks_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = open(&path, &OLD).unwrap();
        assert_eq!(version(&conn), 1);
        conn.execute("INSERT INTO a (x) VALUES (7)", []).unwrap();
        drop(conn);
        let conn = open(&path, &NEW).unwrap();
        assert_eq!(version(&conn), 2);
        let (x, y): (i64, Option<String>) = conn
            .query_row("SELECT x, y FROM a", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((x, y), (7, None));
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(open(&path, &NEW).unwrap());
        let err = open(&path, &OLD).unwrap_err();
        assert!(
            matches!(
                err,
                SqliteError::Newer {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("schema version 2, newer than this meshtest knows (1)")
                && message.contains(&path.display().to_string()),
            "{message}"
        );
        // Refusing it changed nothing.
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn), 2);
    }

    #[test]
    fn a_failed_migration_leaves_the_previous_version() {
        const BROKEN: Schema = Schema {
            program: "meshtest",
            migrations: &[V1, "CREATE TABLE c (w TEXT); CREATE TABLE a (x TEXT);"],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let err = open(&path, &BROKEN).unwrap_err();
        assert!(
            matches!(err, SqliteError::Migration { version: 2, .. }),
            "{err:?}"
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn), 1);
        let c: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'c'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(c, 0);
    }

    #[test]
    fn a_negative_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", -1)
            .unwrap();
        let err = open(&path, &NEW).unwrap_err();
        assert!(
            matches!(err, SqliteError::NegativeVersion { version: -1, .. }),
            "{err:?}"
        );
    }
}
