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
use std::time::Duration;

use partyline_wire::api::{SessionState, SessionView};
use partyline_wire::{EndpointKey, SessionId, SignedAnnouncement, WriteToken, WriteTokenHash};

use crate::database::{Connection, Migrations, Postgres, Tx, is_conflict, migrate, values};

/// The schema's versions (see `database::migrate`); SQLite's first one is
/// also what databases made before versions have (less the columns
/// [`ADDED_COLUMNS`] adds).
const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        "
CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    parties    INTEGER NOT NULL,
    label      TEXT,
    state      TEXT NOT NULL CHECK (state IN ('open', 'full', 'done')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    creator    TEXT,
    write_token_hash TEXT
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);
CREATE INDEX IF NOT EXISTS sessions_creator ON sessions(creator);
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
",
        COORDINATORS,
    ],
    postgres: &[
        "
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    parties    BIGINT NOT NULL,
    label      TEXT,
    state      TEXT NOT NULL CHECK (state IN ('open', 'full', 'done')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    creator    TEXT,
    write_token_hash TEXT
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
CREATE INDEX sessions_creator ON sessions(creator);
CREATE TABLE announcements (
    position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    body     TEXT NOT NULL,
    mac      TEXT NOT NULL,
    UNIQUE (session, endpoint)
);
CREATE INDEX announcements_endpoint ON announcements(endpoint);
CREATE TABLE nameplates (
    number  BIGINT PRIMARY KEY,
    session TEXT NOT NULL UNIQUE REFERENCES sessions(id) ON DELETE CASCADE,
    burned  BIGINT NOT NULL DEFAULT 0,
    changes BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE attempts (
    id         TEXT PRIMARY KEY,
    nameplate  BIGINT NOT NULL REFERENCES nameplates(number) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    joiner     TEXT NOT NULL,
    host       TEXT NOT NULL
);
CREATE INDEX attempts_nameplate ON attempts(nameplate);
",
        COORDINATORS,
    ],
};

/// The coordinators on the database, each by its public URL, with when it
/// last said it is alive (see [`Store::coordinators`]).
const COORDINATORS: &str = "
CREATE TABLE coordinators (
    url     TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
";

/// How long a coordinator that stopped saying it is alive is still named
/// to clients: a few of its sweeps (`expiry`), which say it.
const COORDINATOR_SECS: u64 = 5 * 60;

/// Columns added to SQLite's `sessions` before the schema had versions, with
/// their types; added to such a database when it is opened.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    // The client (see `limits::client`) that created the session.
    ("creator", "TEXT"),
    // The hash of the session's write token (`partyline_wire::write_token`).
    ("write_token_hash", "TEXT"),
];

/// `PRAGMA auto_vacuum`'s value for incremental.
const INCREMENTAL_VACUUM: i64 = 2;

/// How often a PostgreSQL transaction that collided with another process's
/// is run again before the request fails.
const CONFLICT_RETRIES: u32 = 20;

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
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {}", crate::database::postgres_reason(.0))]
    Postgres(#[from] postgres::Error),
    #[error("the database answered with a column {column} that is {reason}")]
    Column { column: usize, reason: &'static str },
    #[error(
        "the database has schema version {found}, made by a newer partyline (this one knows up \
         to {known}): run that version, or another database"
    )]
    NewerSchema { found: usize, known: usize },
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

/// The connection, and on SQLite the bytes its announcements hold (body and
/// MAC), counted as they change so that checking the limit costs nothing. On
/// PostgreSQL other processes change them too, so they are counted when
/// checked.
pub(crate) struct Db {
    pub(crate) conn: Connection,
    announcement_bytes: Option<u64>,
}

impl Store {
    /// Opens (or creates) the SQLite database at `path`.
    pub(crate) fn open(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
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
        add_missing_columns(&conn)?;
        let mut conn = Connection::Sqlite(conn);
        migrate(&mut conn, &MIGRATIONS)?;
        let announcement_bytes = {
            let mut tx = conn.transaction()?;
            stored_bytes(&mut tx)?
        };
        Ok(Self::with(conn, Some(announcement_bytes), limits))
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…`) and
    /// brings its schema up to date.
    pub(crate) async fn connect(url: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        let url = url.to_string();
        let conn = tokio::task::spawn_blocking(move || {
            let mut conn = Connection::Postgres(Box::new(Postgres::connect(&url)?));
            migrate(&mut conn, &MIGRATIONS)?;
            Ok::<_, StoreError>(conn)
        })
        .await??;
        Ok(Self::with(conn, None, limits))
    }

    fn with(conn: Connection, announcement_bytes: Option<u64>, limits: StoreLimits) -> Self {
        Self {
            db: Arc::new(Mutex::new(Db {
                conn,
                announcement_bytes,
            })),
            limits,
        }
    }

    /// Runs `work` with the connection on a blocking thread. On PostgreSQL,
    /// `work` runs again while its transaction collides with another
    /// process's (see `database`), so it must start its own.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-done write
            // behind (the transaction rolls back), so the connection is fine.
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            let mut retries = 0;
            let mut reconnected = false;
            loop {
                match work(&mut db) {
                    Err(e) if is_conflict(&e) && retries < CONFLICT_RETRIES => {
                        retries += 1;
                        // Staggered, so that the two sides do not meet again.
                        let jitter = u64::from(rand::random::<u8>() % 8);
                        std::thread::sleep(Duration::from_millis(u64::from(retries) + jitter));
                    }
                    // The connection was lost (PostgreSQL restarted): its
                    // transaction never happened; once more on a new one.
                    Err(StoreError::Postgres(_)) if !reconnected && db.conn.is_lost() => {
                        reconnected = true;
                    }
                    done => return done,
                }
            }
        })
        .await?
    }

    /// Stores a new session, unless its creator, or everybody, already has
    /// as many alive as the limits allow.
    pub(crate) async fn create(&self, session: NewSession, now: u64) -> Result<(), StoreError> {
        let limits = self.limits;
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let creator = session.creator.to_string();
            if limits.live_sessions_per_client != 0 {
                let alive: u64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM sessions WHERE creator = ?1 AND expires_at > ?2",
                        values![creator.as_str(), now],
                    )?
                    .unsigned(0)?;
                if alive >= u64::from(limits.live_sessions_per_client) {
                    return Err(StoreError::ClientSessions {
                        alive,
                        limit: limits.live_sessions_per_client,
                    });
                }
            }
            if limits.live_sessions != 0 {
                let alive: u64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
                        values![now],
                    )?
                    .unsigned(0)?;
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
                values![
                    session.id.to_string(),
                    session.parties,
                    session.label.clone(),
                    state_name(SessionState::Open),
                    session.created_at,
                    session.expires_at,
                    creator,
                    session.write_token_hash.to_string(),
                ],
            )?;
            tx.commit()
        })
        .await
    }

    /// The session as parties see it, unless it does not exist or expired
    /// before `now` (expired sessions may linger until the next sweep).
    pub(crate) async fn view(&self, id: SessionId, now: u64) -> Result<SessionView, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let session = live_session(&mut tx, id, now)?;
            view_of(&mut tx, id, session)
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
            let mut tx = db.conn.transaction()?;
            let session = live_session(&mut tx, id, now)?;
            authorize(&mut tx, id, token)?;
            if session.state == SessionState::Done {
                return Err(StoreError::Done);
            }
            let key = id.to_string();
            let before = announcement_size(&mut tx, &key, &endpoint)?;
            let size = (signed.body.len() + signed.mac.len()) as u64;
            let all = match db.announcement_bytes {
                Some(counted) => counted,
                None if limit == 0 => 0,
                None => stored_bytes(&mut tx)?,
            };
            let stored = all.saturating_sub(before);
            if limit != 0 && size > before && stored + size > limit {
                return Err(StoreError::StorageFull { stored: all, limit });
            }
            let replaced = tx.execute(
                "UPDATE announcements SET body = ?3, mac = ?4 WHERE session = ?1 AND endpoint = ?2",
                values![
                    key.as_str(),
                    endpoint.to_string(),
                    signed.body.as_str(),
                    signed.mac.as_str()
                ],
            )?;
            if replaced == 0 {
                if count(&mut tx, &key)? >= usize::from(session.parties) {
                    return Err(StoreError::Full {
                        parties: session.parties,
                    });
                }
                tx.execute(
                    "INSERT INTO announcements (session, endpoint, body, mac) VALUES (?1, ?2, ?3, ?4)",
                    values![
                        key.as_str(),
                        endpoint.to_string(),
                        signed.body.as_str(),
                        signed.mac.as_str()
                    ],
                )?;
            }
            let state = if count(&mut tx, &key)? == usize::from(session.parties) {
                SessionState::Full
            } else {
                SessionState::Open
            };
            set_state(&mut tx, &key, state)?;
            let filled = state == SessionState::Full && session.state != SessionState::Full;
            let view = view_of(&mut tx, id, Session { state, ..session })?;
            tx.commit()?;
            if let Some(counted) = &mut db.announcement_bytes {
                *counted = stored + size;
            }
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
            let mut tx = db.conn.transaction()?;
            let session = live_session(&mut tx, id, now)?;
            authorize(&mut tx, id, token)?;
            let key = id.to_string();
            let size = announcement_size(&mut tx, &key, &endpoint)?;
            let removed = tx.execute(
                "DELETE FROM announcements WHERE session = ?1 AND endpoint = ?2",
                values![key.as_str(), endpoint.to_string()],
            )?;
            if removed > 0 && session.state == SessionState::Full {
                set_state(&mut tx, &key, SessionState::Open)?;
            }
            tx.commit()?;
            if let Some(counted) = &mut db.announcement_bytes {
                *counted = counted.saturating_sub(size);
            }
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
            let mut tx = db.conn.transaction()?;
            live_session(&mut tx, id, now)?;
            authorize(&mut tx, id, token)?;
            set_state(&mut tx, &id.to_string(), SessionState::Done)?;
            // Its code is of no use any more; a burned one stays, so that a
            // late joiner is told it was burned, until the session goes.
            tx.execute(
                "DELETE FROM nameplates WHERE session = ?1 AND burned = 0",
                values![id.to_string()],
            )?;
            tx.execute(
                "UPDATE sessions SET expires_at =
                 CASE WHEN expires_at < ?2 THEN expires_at ELSE ?2 END WHERE id = ?1",
                values![id.to_string(), now.saturating_add(done_secs)],
            )?;
            tx.commit()
        })
        .await
    }

    /// Deletes the sessions (and their announcements and nameplates) that
    /// expired before `now`, and code exchanges past their time; returns the
    /// sessions' ids, each to the one process that deleted it.
    ///
    /// On SQLite what they held is overwritten (secure_delete), the freed
    /// pages are given back to the file system and the write-ahead log,
    /// which still holds the rows as they were written, is emptied. On
    /// PostgreSQL the tables are vacuumed, which makes the dead rows' space
    /// reusable (PostgreSQL does not overwrite it at once).
    pub(crate) async fn delete_expired(&self, now: u64) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let ids = tx
                .query(
                    "DELETE FROM sessions WHERE expires_at <= ?1 RETURNING id",
                    values![now],
                )?
                .iter()
                .map(|row| row.text(0))
                .collect::<Result<Vec<_>, _>>()?;
            let attempts = crate::nameplates::delete_stale_attempts(&mut tx, None, now)?;
            tx.commit()?;
            if !ids.is_empty() || attempts > 0 {
                give_back_space(&mut db.conn)?;
            }
            if db.announcement_bytes.is_some() {
                let mut tx = db.conn.transaction()?;
                db.announcement_bytes = Some(stored_bytes(&mut tx)?);
            }
            Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
        })
        .await
    }

    /// Records that the coordinator at `url` is alive at `now`.
    pub(crate) async fn coordinator_alive(&self, url: String, now: u64) -> Result<(), StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            tx.execute(
                "INSERT INTO coordinators (url, seen_at) VALUES (?1, ?2)
                 ON CONFLICT (url) DO UPDATE SET seen_at = excluded.seen_at",
                values![url.as_str(), now],
            )?;
            tx.commit()
        })
        .await
    }

    /// The coordinators but `url` that said they were alive lately: the
    /// other processes on this database, which clients may turn to while
    /// `url` cannot be reached. None with SQLite, which one process uses.
    pub(crate) async fn coordinators(
        &self,
        url: String,
        now: u64,
    ) -> Result<Vec<String>, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            tx.query(
                "SELECT url FROM coordinators WHERE url != ?1 AND seen_at > ?2 ORDER BY url",
                values![url.as_str(), now.saturating_sub(COORDINATOR_SECS)],
            )?
            .iter()
            .map(|row| row.text(0))
            .collect()
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
            let mut tx = db.conn.transaction()?;
            match live_session(&mut tx, id, now) {
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
            let mut tx = db.conn.transaction()?;
            let found = tx.query_optional(
                "SELECT s.id, s.parties FROM announcements a JOIN sessions s ON s.id = a.session
                 WHERE a.endpoint = ?1 AND s.expires_at > ?2 AND s.state != 'done' LIMIT 1",
                values![endpoint.to_string(), now],
            )?;
            let Some(row) = found else {
                return Ok(None);
            };
            Ok(row.text(0)?.parse().ok().zip(Some(row.unsigned(1)?)))
        })
        .await
    }
}

/// Gives the space of deleted rows back (see [`Store::delete_expired`]);
/// outside a transaction, as both databases need.
fn give_back_space(conn: &mut Connection) -> Result<(), StoreError> {
    match conn {
        Connection::Sqlite(conn) => {
            conn.execute_batch("PRAGMA incremental_vacuum;")?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Connection::Postgres(conn) => {
            conn.batch_outside_transaction("VACUUM sessions, announcements, nameplates, attempts")?;
        }
    }
    Ok(())
}

/// Checks that `token` is session `id`'s write token. A session stored
/// before write tokens existed has none, and refuses every change.
pub(crate) fn authorize(
    tx: &mut Tx,
    id: SessionId,
    token: Option<WriteToken>,
) -> Result<(), StoreError> {
    let token = token.ok_or(StoreError::NoWriteToken)?;
    let stored = tx
        .query_optional(
            "SELECT write_token_hash FROM sessions WHERE id = ?1",
            values![id.to_string()],
        )?
        .map(|row| row.optional_text(0))
        .transpose()?
        .flatten();
    let hash: Option<WriteTokenHash> = stored.and_then(|hash| hash.parse().ok());
    match hash {
        Some(hash) if hash.admits(&token) => Ok(()),
        _ => Err(StoreError::WrongWriteToken),
    }
}

/// Adds [`ADDED_COLUMNS`] to a `sessions` table made before them.
fn add_missing_columns(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut statement = conn.prepare("SELECT name FROM pragma_table_info('sessions')")?;
    let present = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if present.is_empty() {
        // A new database: the first migration makes the table whole.
        return Ok(());
    }
    for (column, kind) in ADDED_COLUMNS {
        if !present.iter().any(|name| name == column) {
            conn.execute_batch(&format!("ALTER TABLE sessions ADD COLUMN {column} {kind};"))?;
        }
    }
    Ok(())
}

fn stored_bytes(tx: &mut Tx) -> Result<u64, StoreError> {
    tx.query_one(
        "SELECT CAST(COALESCE(SUM(OCTET_LENGTH(body) + OCTET_LENGTH(mac)), 0) AS BIGINT) \
         FROM announcements",
        &[],
    )?
    .unsigned(0)
}

/// The bytes `endpoint`'s announcement in the session takes, 0 if it has none.
fn announcement_size(tx: &mut Tx, key: &str, endpoint: &EndpointKey) -> Result<u64, StoreError> {
    tx.query_optional(
        "SELECT CAST(OCTET_LENGTH(body) + OCTET_LENGTH(mac) AS BIGINT) FROM announcements \
         WHERE session = ?1 AND endpoint = ?2",
        values![key, endpoint.to_string()],
    )?
    .map_or(Ok(0), |row| row.unsigned(0))
}

/// A session's own row.
pub(crate) struct Session {
    parties: u16,
    label: Option<String>,
    pub(crate) state: SessionState,
    expires_at: u64,
}

pub(crate) fn live_session(tx: &mut Tx, id: SessionId, now: u64) -> Result<Session, StoreError> {
    let row = tx.query_optional(
        "SELECT parties, label, state, expires_at FROM sessions WHERE id = ?1",
        values![id.to_string()],
    )?;
    let Some(row) = row else {
        return Err(StoreError::NoSession);
    };
    let session = Session {
        parties: row.unsigned(0)?,
        label: row.optional_text(1)?,
        state: parse_state(&row.text(2)?),
        expires_at: row.unsigned(3)?,
    };
    if session.expires_at > now {
        Ok(session)
    } else {
        Err(StoreError::NoSession)
    }
}

fn view_of(tx: &mut Tx, id: SessionId, session: Session) -> Result<SessionView, StoreError> {
    let announcements = tx
        .query(
            "SELECT body, mac FROM announcements WHERE session = ?1 ORDER BY position",
            values![id.to_string()],
        )?
        .iter()
        .map(|row| {
            Ok(SignedAnnouncement {
                body: row.text(0)?,
                mac: row.text(1)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(SessionView {
        session: id,
        parties: session.parties,
        label: session.label,
        state: session.state,
        expires_at: session.expires_at,
        announcements,
    })
}

fn count(tx: &mut Tx, key: &str) -> Result<usize, StoreError> {
    tx.query_one(
        "SELECT COUNT(*) FROM announcements WHERE session = ?1",
        values![key],
    )?
    .unsigned(0)
}

fn set_state(tx: &mut Tx, key: &str, state: SessionState) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE sessions SET state = ?2 WHERE id = ?1",
        values![key, state_name(state)],
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
