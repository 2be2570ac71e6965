//! The two databases the store runs on, behind one small interface.
//!
//! The store's logic (`store`, `nameplates`) is written once, as blocking
//! transactions over [`Tx`]; this file runs them on SQLite (one file, the
//! embedded default) or PostgreSQL (shared by several `partyline serve`
//! processes). Queries are written in the SQL both understand, with `?1`
//! placeholders (rewritten to `$1` for PostgreSQL); values cross as
//! [`Value`]s, integers as `i64` (PostgreSQL columns are `BIGINT`).
//!
//! PostgreSQL transactions are SERIALIZABLE, so that a transaction's checks
//! (a session not full, a nameplate free) hold as on SQLite, where one
//! connection does one transaction at a time: two processes that race are
//! told so ([`is_conflict`]) and the store runs the loser again.
//!
//! The schema is versioned: [`migrate`] brings a database from the version it
//! records to the newest, in one transaction, and records it. On PostgreSQL
//! it holds an advisory lock meanwhile, so processes starting at once migrate
//! one after the other.
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use rusqlite::types::ValueRef;

use crate::store::StoreError;

/// A value passed to or read from a query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<u64> for Value {
    /// Times and counts of the store are far below `i64::MAX`; a larger one
    /// (a time limit of "forever") is held at it.
    fn from(value: u64) -> Self {
        Self::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Self::Int(value.into())
    }
}

impl From<u16> for Value {
    fn from(value: u16) -> Self {
        Self::Int(value.into())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_string())
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        value.map_or(Self::Null, Self::Text)
    }
}

/// The values of a query's parameters: `values![a, b]`.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        &[$($crate::database::Value::from($value)),*]
    };
}
pub(crate) use values;

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ToSqlOutput;
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Int(value) => ToSqlOutput::from(*value),
            Value::Text(value) => ToSqlOutput::from(value.as_str()),
        })
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) if *ty == Type::INT4 => i32::try_from(*value)?.to_sql(ty, out),
            Value::Int(value) => value.to_sql(ty, out),
            Value::Text(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::INT4, Type::INT8, Type::TEXT, Type::VARCHAR].contains(ty)
    }

    to_sql_checked!();
}

/// One row of an answer.
pub(crate) struct Row(Vec<Value>);

impl Row {
    fn value(&self, column: usize) -> Result<&Value, StoreError> {
        self.0.get(column).ok_or(StoreError::Column {
            column,
            reason: "missing",
        })
    }

    pub(crate) fn int(&self, column: usize) -> Result<i64, StoreError> {
        match self.value(column)? {
            Value::Int(value) => Ok(*value),
            _ => Err(StoreError::Column {
                column,
                reason: "not an integer",
            }),
        }
    }

    /// An integer that the schema keeps non-negative.
    pub(crate) fn unsigned<T: TryFrom<i64>>(&self, column: usize) -> Result<T, StoreError> {
        T::try_from(self.int(column)?).map_err(|_| StoreError::Column {
            column,
            reason: "out of range",
        })
    }

    pub(crate) fn text(&self, column: usize) -> Result<String, StoreError> {
        self.optional_text(column)?.ok_or(StoreError::Column {
            column,
            reason: "null",
        })
    }

    pub(crate) fn optional_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        match self.value(column)? {
            Value::Text(value) => Ok(Some(value.clone())),
            Value::Null => Ok(None),
            Value::Int(_) => Err(StoreError::Column {
                column,
                reason: "not text",
            }),
        }
    }
}

/// A connection to one of the two databases.
pub(crate) enum Connection {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Postgres>),
}

/// A PostgreSQL connection, made again when it was lost.
pub(crate) struct Postgres {
    url: String,
    /// Always there but while it is dropped (see `Drop`).
    client: Option<postgres::Client>,
}

impl Postgres {
    /// Connects; blocks, so it runs on a blocking thread.
    pub(crate) fn connect(url: &str) -> Result<Self, postgres::Error> {
        Ok(Self {
            url: url.to_string(),
            client: Some(postgres::Client::connect(url, postgres::NoTls)?),
        })
    }

    /// Runs statements that cannot run in a transaction (`VACUUM`).
    pub(crate) fn batch_outside_transaction(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.client()?.batch_execute(sql)
    }

    /// The client, connected again if the connection was lost (PostgreSQL
    /// restarted, or a network hiccup).
    fn client(&mut self) -> Result<&mut postgres::Client, postgres::Error> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => {
                tracing::warn!("the PostgreSQL connection was lost; connecting again");
                postgres::Client::connect(&self.url, postgres::NoTls)?
            }
        };
        Ok(self.client.insert(client))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // The blocking client runs a runtime of its own to close the
        // connection, which tokio forbids on its own threads (the store goes
        // with the last task that held it); a thread of its own may.
        if let Some(client) = self.client.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(client));
        }
    }
}

/// What PostgreSQL said, rather than postgres' "db error"; or what kept us
/// from it, with its cause ("connection refused").
pub(crate) fn postgres_reason(error: &postgres::Error) -> String {
    if let Some(said) = error.as_db_error() {
        return said.to_string();
    }
    let mut reason = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        reason = format!("{reason}: {inner}");
        cause = inner.source();
    }
    reason
}

impl Connection {
    /// The connection to PostgreSQL was lost; the next transaction connects again.
    pub(crate) fn is_lost(&self) -> bool {
        match self {
            Connection::Sqlite(_) => false,
            Connection::Postgres(postgres) => postgres
                .client
                .as_ref()
                .is_none_or(postgres::Client::is_closed),
        }
    }

    /// Starts a transaction.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, StoreError> {
        Ok(match self {
            Connection::Sqlite(conn) => Tx::Sqlite(conn.transaction()?),
            Connection::Postgres(conn) => Tx::Postgres(
                conn.client()?
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::Serializable)
                    .start()?,
            ),
        })
    }
}

/// A transaction on either database; dropped without [`Tx::commit`], it
/// rolls back.
pub(crate) enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(postgres::Transaction<'a>),
}

impl Tx<'_> {
    /// Runs a statement; returns the rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        Ok(match self {
            Tx::Sqlite(tx) => tx.execute(sql, rusqlite::params_from_iter(values.iter()))? as u64,
            Tx::Postgres(tx) => tx.execute(&dollar_placeholders(sql), &pg_params(values))?,
        })
    }

    /// Runs a query (or a statement with `RETURNING`); returns its rows.
    pub(crate) fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self {
            Tx::Sqlite(tx) => {
                let mut statement = tx.prepare(sql)?;
                let columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let row = (0..columns)
                        .map(|column| sqlite_value(row.get_ref(column)?, column))
                        .collect::<Result<_, StoreError>>()?;
                    out.push(Row(row));
                }
                Ok(out)
            }
            Tx::Postgres(tx) => tx
                .query(&dollar_placeholders(sql), &pg_params(values))?
                .iter()
                .map(pg_row)
                .collect(),
        }
    }

    /// The first row of a query, if any.
    pub(crate) fn query_optional(
        &mut self,
        sql: &str,
        values: &[Value],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, values)?.into_iter().next())
    }

    /// The first row of a query that always has one (a `COUNT`, say).
    pub(crate) fn query_one(&mut self, sql: &str, values: &[Value]) -> Result<Row, StoreError> {
        self.query_optional(sql, values)?.ok_or(StoreError::Column {
            column: 0,
            reason: "no row",
        })
    }

    /// Runs several statements without parameters.
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.execute_batch(sql)?,
            Tx::Postgres(tx) => tx.batch_execute(sql)?,
        }
        Ok(())
    }

    pub(crate) fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit()?,
            Tx::Postgres(tx) => tx.commit()?,
        }
        Ok(())
    }
}

/// PostgreSQL's placeholders: `?1` becomes `$1` (no query of the store has
/// a `?` anywhere else).
fn dollar_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

fn pg_params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

fn sqlite_value(value: ValueRef<'_>, column: usize) -> Result<Value, StoreError> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Int(value),
        ValueRef::Text(text) => Value::Text(
            std::str::from_utf8(text)
                .map_err(|_| StoreError::Column {
                    column,
                    reason: "not UTF-8",
                })?
                .to_string(),
        ),
        ValueRef::Real(_) | ValueRef::Blob(_) => {
            return Err(StoreError::Column {
                column,
                reason: "neither integer nor text",
            });
        }
    })
}

fn pg_row(row: &postgres::Row) -> Result<Row, StoreError> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(column, info)| {
            let ty = info.type_();
            Ok(if *ty == Type::INT8 {
                row.try_get::<_, Option<i64>>(column)?
                    .map_or(Value::Null, Value::Int)
            } else if *ty == Type::INT4 {
                row.try_get::<_, Option<i32>>(column)?
                    .map_or(Value::Null, |value| Value::Int(value.into()))
            } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
                row.try_get::<_, Option<String>>(column)?
                    .map_or(Value::Null, Value::Text)
            } else {
                return Err(StoreError::Column {
                    column,
                    reason: "neither integer nor text",
                });
            })
        })
        .collect::<Result<_, _>>()
        .map(Row)
}

/// The error says two PostgreSQL transactions collided: running it again
/// succeeds (or fails for a reason of its own).
pub(crate) fn is_conflict(error: &StoreError) -> bool {
    match error {
        StoreError::Postgres(e) => matches!(
            e.code(),
            Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        ),
        _ => false,
    }
}

/// The versions of the schema, one migration each: `migrations[i]` takes a
/// database from version `i` to `i + 1`.
pub(crate) struct Migrations {
    pub(crate) sqlite: &'static [&'static str],
    pub(crate) postgres: &'static [&'static str],
}

/// Any PostgreSQL lock key, the same in every partyline: the migration lock.
const MIGRATION_LOCK: i64 = 0x7061_7274_796c_696e;

/// Brings the database to the newest schema version and records it; a
/// database already there is left alone. Refuses a database of a newer
/// partyline. Returns the version it was at.
pub(crate) fn migrate(conn: &mut Connection, migrations: &Migrations) -> Result<usize, StoreError> {
    let Connection::Postgres(postgres) = conn else {
        return migrate_now(conn, migrations.sqlite);
    };
    // Taken before the transaction starts: a SERIALIZABLE transaction's
    // snapshot predates any lock it waits for inside, so it would not see
    // the versions another process recorded meanwhile.
    postgres.batch_outside_transaction(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let migrated = migrate_now(conn, migrations.postgres);
    if let Connection::Postgres(postgres) = conn {
        // Ending the connection would free it too.
        let unlocked = postgres
            .batch_outside_transaction(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
        if migrated.is_ok() {
            unlocked?;
        }
    }
    migrated
}

fn migrate_now(conn: &mut Connection, steps: &[&str]) -> Result<usize, StoreError> {
    let mut tx = conn.transaction()?;
    tx.batch(
        "CREATE TABLE IF NOT EXISTS schema_versions (
             version    BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )?;
    let found = tx
        .query_one(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_versions",
            &[],
        )?
        .unsigned::<usize>(0)?;
    if found > steps.len() {
        return Err(StoreError::NewerSchema {
            found,
            known: steps.len(),
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    for (version, step) in steps.iter().enumerate().skip(found) {
        tx.batch(step)?;
        tx.execute(
            "INSERT INTO schema_versions (version, applied_at) VALUES (?1, ?2)",
            values![version as u64 + 1, now],
        )?;
        tracing::info!(version = version + 1, "database schema migrated");
    }
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: Migrations = Migrations {
        sqlite: &[
            "CREATE TABLE a (x INTEGER)",
            "ALTER TABLE a ADD COLUMN y TEXT",
        ],
        postgres: &[],
    };

    fn sqlite() -> Connection {
        Connection::Sqlite(rusqlite::Connection::open_in_memory().unwrap())
    }

    #[test]
    fn migrations_run_once_each_and_a_newer_schema_is_refused() {
        let mut conn = sqlite();
        assert_eq!(migrate(&mut conn, &STEPS).unwrap(), 0);
        // Again: nothing left to do (a second ALTER would fail).
        assert_eq!(migrate(&mut conn, &STEPS).unwrap(), 2);
        let mut tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO a (x, y) VALUES (?1, ?2)",
            values![7u64, "seven"],
        )
        .unwrap();
        let row = tx.query_one("SELECT x, y FROM a", &[]).unwrap();
        assert_eq!(
            (row.int(0).unwrap(), row.text(1).unwrap()),
            (7, "seven".into())
        );
        tx.execute(
            "INSERT INTO schema_versions (version, applied_at) VALUES (3, 0)",
            &[],
        )
        .unwrap();
        tx.commit().unwrap();
        match migrate(&mut conn, &STEPS) {
            Err(StoreError::NewerSchema { found: 3, known: 2 }) => {}
            other => panic!("a newer schema was not refused: {other:?}"),
        }
    }

    #[test]
    fn placeholders_become_postgres_ones() {
        assert_eq!(
            dollar_placeholders("SELECT ?1 WHERE a = ?2"),
            "SELECT $1 WHERE a = $2"
        );
    }
}
