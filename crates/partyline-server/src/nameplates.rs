//! Nameplates and the code exchanges on them, in the sessions' database.
//!
//! A nameplate is the number of a short code (`partyline_wire::code`): the
//! host of a session takes the lowest free one, and joiners reach the host's
//! mailbox by it. Each joiner's exchange is an *attempt*: two short lists of
//! opaque messages, the joiner's and the host's (`partyline_wire::code_exchange`
//! says what they are; the server never looks inside). The server holds only
//! what is under way: at most [`LIVE_ATTEMPTS`] attempts a nameplate, each
//! for [`ATTEMPT_SECS`], at most [`MESSAGES_PER_SIDE`] messages a side. A
//! nameplate goes with its session (deleted, done or expired), or when its
//! host frees it; a burned one stays until the session is deleted, so that
//! late joiners are told it was burned. Deleting overwrites, as for sessions
//! (`store`).
use partyline_wire::api::{AttemptId, AttemptView, NameplateView};
use partyline_wire::{Nameplate, SessionId, WriteToken};

use crate::database::{Tx, values};
use crate::store::{Store, StoreError, authorize, live_session};

/// How long an attempt lives: a whole exchange takes two round trips, made
/// by programs, not people.
pub(crate) const ATTEMPT_SECS: u64 = 120;
/// Attempts under way on one nameplate at once.
pub(crate) const LIVE_ATTEMPTS: usize = 8;
/// Messages each side sends in an attempt (see `partyline_wire::code_exchange`).
pub(crate) const MESSAGES_PER_SIDE: usize = 2;

/// Who sends a message of an attempt.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Joiner,
    /// The host, with the write token it showed.
    Host(Option<WriteToken>),
}

/// A nameplate's row.
struct Plate {
    session: SessionId,
    burned: bool,
    changes: u64,
}

/// The nameplate, if its session is alive; burned or not.
fn live_nameplate(tx: &mut Tx, nameplate: Nameplate, now: u64) -> Result<Plate, StoreError> {
    let row = tx
        .query_optional(
            "SELECT p.session, p.burned, p.changes FROM nameplates p
             JOIN sessions s ON s.id = p.session
             WHERE p.number = ?1 AND s.expires_at > ?2",
            values![nameplate.0, now],
        )?
        .ok_or(StoreError::NoNameplate)?;
    let session = row.text(0)?.parse().map_err(|_| StoreError::NoNameplate)?;
    Ok(Plate {
        session,
        burned: row.int(1)? != 0,
        changes: row.unsigned(2)?,
    })
}

/// The nameplate, if it is alive and not burned.
fn usable_nameplate(tx: &mut Tx, nameplate: Nameplate, now: u64) -> Result<Plate, StoreError> {
    let plate = live_nameplate(tx, nameplate, now)?;
    if plate.burned {
        return Err(StoreError::Burned);
    }
    Ok(plate)
}

/// Deletes attempts older than [`ATTEMPT_SECS`], on one nameplate or all.
pub(crate) fn delete_stale_attempts(
    tx: &mut Tx,
    nameplate: Option<Nameplate>,
    now: u64,
) -> Result<u64, StoreError> {
    let before = now.saturating_sub(ATTEMPT_SECS);
    match nameplate {
        Some(n) => tx.execute(
            "DELETE FROM attempts WHERE nameplate = ?1 AND created_at <= ?2",
            values![n.0, before],
        ),
        None => tx.execute(
            "DELETE FROM attempts WHERE created_at <= ?1",
            values![before],
        ),
    }
}

/// An attempt's messages; [`StoreError::NoAttempt`] if it is not there or past its time.
fn attempt(
    tx: &mut Tx,
    nameplate: Nameplate,
    id: &AttemptId,
    now: u64,
) -> Result<AttemptView, StoreError> {
    let row = tx
        .query_optional(
            "SELECT joiner, host FROM attempts WHERE id = ?1 AND nameplate = ?2 AND created_at > ?3",
            values![id.to_string(), nameplate.0, now.saturating_sub(ATTEMPT_SECS)],
        )?
        .ok_or(StoreError::NoAttempt)?;
    Ok(AttemptView {
        attempt: *id,
        joiner: messages(&row.text(0)?),
        host: messages(&row.text(1)?),
    })
}

/// A side's messages as stored (a JSON array of strings, written only here).
fn messages(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn store_messages(list: &[String]) -> String {
    serde_json::to_string(list).expect("strings serialize")
}

fn bump_changes(tx: &mut Tx, nameplate: Nameplate) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE nameplates SET changes = changes + 1 WHERE number = ?1",
        values![nameplate.0],
    )?;
    Ok(())
}

/// The lowest number no nameplate has.
fn lowest_free(tx: &mut Tx) -> Result<u32, StoreError> {
    tx.query_one(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM nameplates WHERE number = 1) THEN 1
         ELSE (SELECT MIN(p.number + 1) FROM nameplates p
               WHERE NOT EXISTS (SELECT 1 FROM nameplates q WHERE q.number = p.number + 1))
         END",
        &[],
    )?
    .unsigned(0)
}

impl Store {
    /// Gives session `id` (whose write token `token` must be) the lowest free
    /// nameplate. Nameplates of sessions that expired are freed first.
    pub(crate) async fn allocate_nameplate(
        &self,
        id: SessionId,
        token: Option<WriteToken>,
        now: u64,
    ) -> Result<Nameplate, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let session = live_session(&mut tx, id, now)?;
            authorize(&mut tx, id, token)?;
            if session.state == partyline_wire::api::SessionState::Done {
                return Err(StoreError::Done);
            }
            tx.execute(
                "DELETE FROM nameplates WHERE session IN
                 (SELECT id FROM sessions WHERE expires_at <= ?1)",
                values![now],
            )?;
            let taken = tx
                .query_one(
                    "SELECT COUNT(*) FROM nameplates WHERE session = ?1",
                    values![id.to_string()],
                )?
                .int(0)?;
            if taken > 0 {
                return Err(StoreError::HasNameplate);
            }
            let number = lowest_free(&mut tx)?;
            tx.execute(
                "INSERT INTO nameplates (number, session) VALUES (?1, ?2)",
                values![number, id.to_string()],
            )?;
            tx.commit()?;
            Ok(Nameplate(number))
        })
        .await
    }

    /// The session of a nameplate that takes attempts.
    pub(crate) async fn nameplate_session(
        &self,
        nameplate: Nameplate,
        now: u64,
    ) -> Result<SessionId, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            Ok(usable_nameplate(&mut tx, nameplate, now)?.session)
        })
        .await
    }

    /// The host ends its nameplate: frees it with its attempts (`burn`
    /// false; a burned one stays burned until its session goes), or burns it:
    /// its attempts are deleted and every later one refused. Returns its session.
    pub(crate) async fn end_nameplate(
        &self,
        nameplate: Nameplate,
        token: Option<WriteToken>,
        burn: bool,
        now: u64,
    ) -> Result<SessionId, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let plate = live_nameplate(&mut tx, nameplate, now)?;
            authorize(&mut tx, plate.session, token)?;
            if burn {
                tx.execute(
                    "UPDATE nameplates SET burned = 1 WHERE number = ?1",
                    values![nameplate.0],
                )?;
                tx.execute(
                    "DELETE FROM attempts WHERE nameplate = ?1",
                    values![nameplate.0],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM nameplates WHERE number = ?1 AND burned = 0",
                    values![nameplate.0],
                )?;
            }
            tx.commit()?;
            Ok(plate.session)
        })
        .await
    }

    /// Opens an attempt with the joiner's first message.
    pub(crate) async fn open_attempt(
        &self,
        nameplate: Nameplate,
        message: String,
        now: u64,
    ) -> Result<(SessionId, AttemptId), StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let plate = usable_nameplate(&mut tx, nameplate, now)?;
            delete_stale_attempts(&mut tx, Some(nameplate), now)?;
            let live: usize = tx
                .query_one(
                    "SELECT COUNT(*) FROM attempts WHERE nameplate = ?1",
                    values![nameplate.0],
                )?
                .unsigned(0)?;
            if live >= LIVE_ATTEMPTS {
                return Err(StoreError::TooManyAttempts {
                    live,
                    limit: LIVE_ATTEMPTS,
                });
            }
            let id = AttemptId::random();
            tx.execute(
                "INSERT INTO attempts (id, nameplate, created_at, joiner, host)
                 VALUES (?1, ?2, ?3, ?4, '[]')",
                values![
                    id.to_string(),
                    nameplate.0,
                    now,
                    store_messages(std::slice::from_ref(&message))
                ],
            )?;
            bump_changes(&mut tx, nameplate)?;
            tx.commit()?;
            Ok((plate.session, id))
        })
        .await
    }

    /// Adds a message to an attempt, from its joiner or (showing the
    /// session's write token) its host. A joiner's message counts as a change
    /// of the nameplate, which the host's long poll waits for.
    pub(crate) async fn add_message(
        &self,
        nameplate: Nameplate,
        id: AttemptId,
        from: Side,
        message: String,
        now: u64,
    ) -> Result<SessionId, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let plate = usable_nameplate(&mut tx, nameplate, now)?;
            let view = attempt(&mut tx, nameplate, &id, now)?;
            let (mut messages, column) = match from {
                Side::Joiner => (view.joiner, "joiner"),
                Side::Host(token) => {
                    authorize(&mut tx, plate.session, token)?;
                    (view.host, "host")
                }
            };
            if messages.len() >= MESSAGES_PER_SIDE {
                return Err(StoreError::AttemptComplete);
            }
            messages.push(message.clone());
            tx.execute(
                &format!("UPDATE attempts SET {column} = ?2 WHERE id = ?1"),
                values![id.to_string(), store_messages(&messages)],
            )?;
            if matches!(from, Side::Joiner) {
                bump_changes(&mut tx, nameplate)?;
            }
            tx.commit()?;
            Ok(plate.session)
        })
        .await
    }

    /// One attempt, for its joiner, with the session whose changes wake it.
    pub(crate) async fn attempt_view(
        &self,
        nameplate: Nameplate,
        id: AttemptId,
        now: u64,
    ) -> Result<(SessionId, AttemptView), StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let plate = usable_nameplate(&mut tx, nameplate, now)?;
            Ok((plate.session, attempt(&mut tx, nameplate, &id, now)?))
        })
        .await
    }

    /// Every live attempt on a nameplate, for its host.
    pub(crate) async fn nameplate_view(
        &self,
        nameplate: Nameplate,
        token: Option<WriteToken>,
        now: u64,
    ) -> Result<NameplateView, StoreError> {
        self.run(move |db| {
            let mut tx = db.conn.transaction()?;
            let plate = usable_nameplate(&mut tx, nameplate, now)?;
            authorize(&mut tx, plate.session, token)?;
            delete_stale_attempts(&mut tx, Some(nameplate), now)?;
            let attempts = tx.query(
                "SELECT id, joiner, host FROM attempts WHERE nameplate = ?1
                 ORDER BY created_at, id",
                values![nameplate.0],
            )?;
            tx.commit()?;
            let mut views = Vec::with_capacity(attempts.len());
            for row in &attempts {
                if let Ok(attempt) = row.text(0)?.parse() {
                    views.push(AttemptView {
                        attempt,
                        joiner: messages(&row.text(1)?),
                        host: messages(&row.text(2)?),
                    });
                }
            }
            Ok(NameplateView {
                nameplate,
                session: plate.session,
                changes: plate.changes,
                attempts: views,
            })
        })
        .await
    }
}
