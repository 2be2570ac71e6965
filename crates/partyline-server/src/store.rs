//! Sessions and announcements in SQLite: all the state the coordinator has.
//!
//! Keeping everything in the database (and nothing that matters in memory)
//! means a restarted server picks up every session where it was. SQLite calls
//! block, so they run on tokio's blocking threads, one at a time behind a
//! mutex: the coordinator's load is a handful of small writes per session,
//! far below what one connection handles.
//!
//! Announcements are opaque to the server: it stores the body and MAC exactly
//! as received. The endpoint id is read out of the body only to recognise a
//! party announcing again.
//!
//! What strangers can make the server keep is bounded here: sessions alive
//! per client and in all, and the bytes of all announcements together
//! (each session holds at most `parties` of them, each of bounded size).
//! A session's nameplate and its code exchanges are in `nameplates`; they
//! go with the session.
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use partyline_wire::api::{SessionState, SessionView};
use partyline_wire::{EndpointKey, SessionId, SignedAnnouncement, WriteToken, WriteTokenHash};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    parties    INTEGER NOT NULL,
    label      TEXT,
    state      TEXT NOT NULL CHECK (state IN ('open', 'full', 'done')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);
CREATE TABLE IF NOT EXISTS announcements (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    session  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    body     TEXT NOT NULL,
    mac      TEXT NOT NULL,
    UNIQUE (session, endpoint)
);
CREATE INDEX IF NOT EXISTS announcements_endpoint ON announcements(endpoint);
CREATE TABLE IF NOT EXISTS nameplates (
    number  INTEGER PRIMARY KEY,
    session TEXT NOT NULL UNIQUE REFERENCES sessions(id) ON DELETE CASCADE,
    burned  INTEGER NOT NULL DEFAULT 0,
    changes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS attempts (
    id         TEXT PRIMARY KEY,
    nameplate  INTEGER NOT NULL REFERENCES nameplates(number) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    joiner     TEXT NOT NULL,
    host       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_nameplate ON attempts(nameplate);
";

/// Columns added after the first release, with their types; added to an
/// older database when it is opened.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    // The client (see `limits::client`) that created the session.
    ("creator", "TEXT"),
    // The hash of the session's write token (`partyline_wire::write_token`).
    ("write_token_hash", "TEXT"),
];

/// `PRAGMA auto_vacuum`'s value for incremental.
const INCREMENTAL_VACUUM: i64 = 2;

/// Why the store did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("no such session, or it expired")]
    NoSession,
    #[error("all {parties} parties have announced")]
    Full { parties: u16 },
    #[error("the session is done")]
    Done,
    #[error("{alive} sessions of this client are alive; the limit is {limit}")]
    ClientSessions { alive: u64, limit: u32 },
    #[error("{alive} sessions are alive; the limit is {limit}")]
    AllSessions { alive: u64, limit: u32 },
    #[error("announcements take {stored} bytes; the limit is {limit}")]
    StorageFull { stored: u64, limit: u64 },
    #[error("the change shows no write token")]
    NoWriteToken,
    #[error("the change shows a write token that is not the session's")]
    WrongWriteToken,
    #[error("no such nameplate, or its session ended")]
    NoNameplate,
    #[error("the nameplate was burned")]
    Burned,
    #[error("the session already has a nameplate")]
    HasNameplate,
    #[error("no such attempt on the nameplate, or it expired")]
    NoAttempt,
    #[error("{live} attempts are under way on the nameplate; the limit is {limit}")]
    TooManyAttempts { live: usize, limit: usize },
    #[error("that side has sent all its messages of the attempt")]
    AttemptComplete,
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A session about to be stored.
pub(crate) struct NewSession {
    pub(crate) id: SessionId,
    pub(crate) parties: u16,
    pub(crate) label: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
    /// The client that creates it, as `limits::client` keys it.
    pub(crate) creator: IpAddr,
    /// Every change of the session must show the token of this hash.
    pub(crate) write_token_hash: WriteTokenHash,
}

/// What the store refuses to grow beyond; `0` is no limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoreLimits {
    pub(crate) live_sessions_per_client: u32,
    pub(crate) live_sessions: u32,
    pub(crate) announcement_bytes: u64,
}

/// The outcome of an announcement.
pub(crate) struct Announced {
    pub(crate) view: SessionView,
    /// This announcement was the last one missing.
    pub(crate) filled: bool,
}

/// A handle to the database; clones share the connection.
#[derive(Clone)]
pub(crate) struct Store {
    db: Arc<Mutex<Db>>,
    limits: StoreLimits,
}

/// The connection, and the bytes its announcements hold (body and MAC),
/// counted as they change so that checking the limit costs nothing.
pub(crate) struct Db {
    pub(crate) conn: Connection,
    announcement_bytes: u64,
}

impl Store {
    /// Opens (or creates) the database at `path`.
    pub(crate) fn open(path: &Path, limits: StoreLimits) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        // WAL keeps readers and the writer out of each other's way and makes
        // a commit one append; NORMAL sync is safe with WAL (a power cut can
        // lose the last commits, never corrupt the file).
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        })?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        // A deleted session must be gone from the disk, not only unlinked:
        // secure_delete overwrites what a delete frees with zeros, and
        // incremental auto-vacuum lets each sweep give the freed pages back
        // (see `delete_expired`). A database made before this is converted
        // once.
        conn.execute_batch("PRAGMA secure_delete = ON;")?;
        let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |row| row.get(0))?;
        if auto_vacuum != INCREMENTAL_VACUUM {
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
        }
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        conn.execute_batch("CREATE INDEX IF NOT EXISTS sessions_creator ON sessions(creator);")?;
        let announcement_bytes = stored_bytes(&conn)?;
        Ok(Self {
            db: Arc::new(Mutex::new(Db {
                conn,
                announcement_bytes,
            })),
            limits,
        })
    }

    /// Runs `work` with the connection on a blocking thread.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-done write
            // behind (the transaction rolls back), so the connection is fine.
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut db)
        })
        .await?
    }

    /// Stores a new session, unless its creator, or everybody, already has
    /// as many alive as the limits allow.
    pub(crate) async fn create(&self, session: NewSession, now: u64) -> Result<(), StoreError> {
        let limits = self.limits;
        self.run(move |db| {
            let tx = db.conn.transaction()?;
            let creator = session.creator.to_string();
            if limits.live_sessions_per_client != 0 {
                let alive: u64 = tx.query_row(
                    "SELECT COUNT(*) FROM sessions WHERE creator = ?1 AND expires_at > ?2",
                    params![creator, now],
                    |row| row.get(0),
                )?;
                if alive >= u64::from(limits.live_sessions_per_client) {
                    return Err(StoreError::ClientSessions {
                        alive,
                        limit: limits.live_sessions_per_client,
                    });
                }
            }
            if limits.live_sessions != 0 {
                let alive: u64 = tx.query_row(
                    "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
                    params![now],
                    |row| row.get(0),
                )?;
                if alive >= u64::from(limits.live_sessions) {
                    return Err(StoreError::AllSessions {
                        alive,
                        limit: limits.live_sessions,
                    });
                }
            }
            tx.execute(
                "INSERT INTO sessions
                 (id, parties, label, state, created_at, expires_at, creator, write_token_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session.id.to_string(),
                    session.parties,
                    session.label,
                    state_name(SessionState::Open),
                    session.created_at,
                    session.expires_at,
                    creator,
                    session.write_token_hash.to_string(),
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The session as parties see it, unless it does not exist or expired
    /// before `now` (expired sessions may linger until the next sweep).
    pub(crate) async fn view(&self, id: SessionId, now: u64) -> Result<SessionView, StoreError> {
        self.run(move |db| {
            let tx = db.conn.transaction()?;
            let session = live_session(&tx, id, now)?;
            Ok(view_of(&tx, id, session)?)
        })
        .await
    }

    /// Stores a party's announcement, replacing an earlier one from the same
    /// endpoint, and marks the session full when it was the last one missing.
    pub(crate) async fn announce(
        &self,
        id: SessionId,
        endpoint: EndpointKey,
        signed: SignedAnnouncement,
        token: Option<WriteToken>,
        now: u64,
    ) -> Result<Announced, StoreError> {
        let limit = self.limits.announcement_bytes;
        self.run(move |db| {
            let tx = db.conn.transaction()?;
            let session = live_session(&tx, id, now)?;
            authorize(&tx, id, token)?;
            if session.state == SessionState::Done {
                return Err(StoreError::Done);
            }
            let key = id.to_string();
            let before = announcement_size(&tx, &key, &endpoint)?;
            let size = (signed.body.len() + signed.mac.len()) as u64;
            let stored = db.announcement_bytes.saturating_sub(before);
            if limit != 0 && size > before && stored + size > limit {
                return Err(StoreError::StorageFull {
                    stored: db.announcement_bytes,
                    limit,
                });
            }
            let replaced = tx.execute(
                "UPDATE announcements SET body = ?3, mac = ?4 WHERE session = ?1 AND endpoint = ?2",
                params![key, endpoint.to_string(), signed.body, signed.mac],
            )?;
            if replaced == 0 {
                if count(&tx, &key)? >= usize::from(session.parties) {
                    return Err(StoreError::Full {
                        parties: session.parties,
                    });
                }
                tx.execute(
                    "INSERT INTO announcements (session, endpoint, body, mac) VALUES (?1, ?2, ?3, ?4)",
                    params![key, endpoint.to_string(), signed.body, signed.mac],
                )?;
            }
            let state = if count(&tx, &key)? == usize::from(session.parties) {
                SessionState::Full
            } else {
                SessionState::Open
            };
            set_state(&tx, &key, state)?;
            let filled = state == SessionState::Full && session.state != SessionState::Full;
            let view = view_of(&tx, id, Session { state, ..session })?;
            tx.commit()?;
            db.announcement_bytes = stored + size;
            Ok(Announced { view, filled })
        })
        .await
    }

    /// Removes a party's announcement; a full session becomes open again.
    /// Removing an announcement that is not there is not an error, so that a
    /// party can retry leaving.
    pub(crate) async fn leave(
        &self,
        id: SessionId,
        endpoint: EndpointKey,
        token: Option<WriteToken>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.run(move |db| {
            let tx = db.conn.transaction()?;
            let session = live_session(&tx, id, now)?;
            authorize(&tx, id, token)?;
            let key = id.to_string();
            let size = announcement_size(&tx, &key, &endpoint)?;
            let removed = tx.execute(
                "DELETE FROM announcements WHERE session = ?1 AND endpoint = ?2",
                params![key, endpoint.to_string()],
            )?;
            if removed > 0 && session.state == SessionState::Full {
                set_state(&tx, &key, SessionState::Open)?;
            }
            tx.commit()?;
            db.announcement_bytes = db.announcement_bytes.saturating_sub(size);
            Ok(())
        })
        .await
    }

    /// Marks the session done; it expires `done_secs` later (or when it
    /// would have anyway, if sooner).
    pub(crate) async fn finish(
        &self,
        id: SessionId,
        token: Option<WriteToken>,
        now: u64,
        done_secs: u64,
    ) -> Result<(), StoreError> {
        self.run(move |db| {
            let tx = db.conn.transaction()?;
            live_session(&tx, id, now)?;
            authorize(&tx, id, token)?;
            set_state(&tx, &id.to_string(), SessionState::Done)?;
            // Its code is of no use any more; a burned one stays, so that a
            // late joiner is told it was burned, until the session goes.
            tx.execute(
                "DELETE FROM nameplates WHERE session = ?1 AND burned = 0",
                params![id.to_string()],
            )?;
            tx.execute(
                "UPDATE sessions SET expires_at = MIN(expires_at, ?2) WHERE id = ?1",
                params![id.to_string(), now.saturating_add(done_secs)],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Deletes the sessions (and their announcements and nameplates) that
    /// expired before `now`, and code exchanges past their time; returns the
    /// sessions' ids. What they held is overwritten (secure_delete), the freed
    /// pages are given back to the file system and the write-ahead log, which
    /// still holds the rows as they were written, is emptied.
    pub(crate) async fn delete_expired(&self, now: u64) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |db| {
            let tx = db.conn.transaction()?;
            let ids = {
                let mut statement = tx.prepare("SELECT id FROM sessions WHERE expires_at <= ?1")?;
                statement
                    .query_map(params![now], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
            let attempts = crate::nameplates::delete_stale_attempts(&tx, None, now)?;
            tx.commit()?;
            if !ids.is_empty() || attempts > 0 {
                db.conn.execute_batch("PRAGMA incremental_vacuum;")?;
                db.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            }
            db.announcement_bytes = stored_bytes(&db.conn)?;
            Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
        })
        .await
    }

    /// The party count of session `id` if it is alive and not done: the relay
    /// serves its parties.
    pub(crate) async fn relay_session(
        &self,
        id: SessionId,
        now: u64,
    ) -> Result<Option<u16>, StoreError> {
        self.run(move |db| {
            let tx = db.conn.transaction()?;
            match live_session(&tx, id, now) {
                Ok(session) if session.state != SessionState::Done => Ok(Some(session.parties)),
                Ok(_) | Err(StoreError::NoSession) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// A session that is alive, not done, and has an announcement of
    /// `endpoint`, with its party count.
    pub(crate) async fn session_of(
        &self,
        endpoint: EndpointKey,
        now: u64,
    ) -> Result<Option<(SessionId, u16)>, StoreError> {
        self.run(move |db| {
            let found = db
                .conn
                .query_row(
                    "SELECT s.id, s.parties FROM announcements a JOIN sessions s ON s.id = a.session
                     WHERE a.endpoint = ?1 AND s.expires_at > ?2 AND s.state != 'done' LIMIT 1",
                    params![endpoint.to_string(), now],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, u16>(1)?)),
                )
                .optional()?;
            Ok(found.and_then(|(id, parties)| Some((id.parse().ok()?, parties))))
        })
        .await
    }
}

/// Checks that `token` is session `id`'s write token. A session stored
/// before write tokens existed has none, and refuses every change.
pub(crate) fn authorize(
    tx: &Transaction,
    id: SessionId,
    token: Option<WriteToken>,
) -> Result<(), StoreError> {
    let token = token.ok_or(StoreError::NoWriteToken)?;
    let stored: Option<String> = tx.query_row(
        "SELECT write_token_hash FROM sessions WHERE id = ?1",
        params![id.to_string()],
        |row| row.get(0),
    )?;
    let hash: Option<WriteTokenHash> = stored.and_then(|hash| hash.parse().ok());
    match hash {
        Some(hash) if hash.admits(&token) => Ok(()),
        _ => Err(StoreError::WrongWriteToken),
    }
}

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut statement = conn.prepare("SELECT name FROM pragma_table_info('sessions')")?;
    let present = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (column, kind) in ADDED_COLUMNS {
        if !present.iter().any(|name| name == column) {
            conn.execute_batch(&format!("ALTER TABLE sessions ADD COLUMN {column} {kind};"))?;
        }
    }
    Ok(())
}

fn stored_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB)) + LENGTH(CAST(mac AS BLOB))), 0) \
         FROM announcements",
        [],
        |row| row.get(0),
    )
}

/// The bytes `endpoint`'s announcement in the session takes, 0 if it has none.
fn announcement_size(tx: &Transaction, key: &str, endpoint: &EndpointKey) -> rusqlite::Result<u64> {
    Ok(tx
        .query_row(
            "SELECT LENGTH(CAST(body AS BLOB)) + LENGTH(CAST(mac AS BLOB)) FROM announcements \
             WHERE session = ?1 AND endpoint = ?2",
            params![key, endpoint.to_string()],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// A session's own row.
pub(crate) struct Session {
    parties: u16,
    label: Option<String>,
    pub(crate) state: SessionState,
    expires_at: u64,
}

pub(crate) fn live_session(
    tx: &Transaction,
    id: SessionId,
    now: u64,
) -> Result<Session, StoreError> {
    let session = tx
        .query_row(
            "SELECT parties, label, state, expires_at FROM sessions WHERE id = ?1",
            params![id.to_string()],
            |row| {
                Ok(Session {
                    parties: row.get(0)?,
                    label: row.get(1)?,
                    state: parse_state(&row.get::<_, String>(2)?),
                    expires_at: row.get(3)?,
                })
            },
        )
        .optional()?;
    match session {
        Some(session) if session.expires_at > now => Ok(session),
        _ => Err(StoreError::NoSession),
    }
}

fn view_of(tx: &Transaction, id: SessionId, session: Session) -> rusqlite::Result<SessionView> {
    let mut statement =
        tx.prepare("SELECT body, mac FROM announcements WHERE session = ?1 ORDER BY position")?;
    let announcements = statement
        .query_map(params![id.to_string()], |row| {
            Ok(SignedAnnouncement {
                body: row.get(0)?,
                mac: row.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(SessionView {
        session: id,
        parties: session.parties,
        label: session.label,
        state: session.state,
        expires_at: session.expires_at,
        announcements,
    })
}

fn count(tx: &Transaction, key: &str) -> rusqlite::Result<usize> {
    tx.query_row(
        "SELECT COUNT(*) FROM announcements WHERE session = ?1",
        params![key],
        |row| row.get(0),
    )
}

fn set_state(tx: &Transaction, key: &str, state: SessionState) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET state = ?2 WHERE id = ?1",
        params![key, state_name(state)],
    )?;
    Ok(())
}

fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Open => "open",
        SessionState::Full => "full",
        SessionState::Done => "done",
    }
}

/// The schema admits only the three names; "open" stands for anything else
/// because it is the state that refuses nothing.
fn parse_state(name: &str) -> SessionState {
    match name {
        "full" => SessionState::Full,
        "done" => SessionState::Done,
        _ => SessionState::Open,
    }
}
