//! Why the state store failed, classified so the server can say what is wrong and where.

use std::path::PathBuf;

/// What kind of fault a state-store error is; decides how the server reacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The file is not a database or is damaged: it is moved aside and a fresh one started.
    Corrupt,
    /// Another process holds the database: klaxon runs memory-only and retries.
    Locked,
    /// The disk is full: writes fail until space is freed; state stays in memory.
    Full,
    /// The directory or file cannot be created, opened or written (permissions, read-only fs).
    Unwritable,
    /// A schema migration failed (a newer or edited schema).
    Migration,
    /// Anything else (IO errors, internal errors).
    Other,
}

impl FaultKind {
    /// The short name shown in logs and `/health/detailed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Corrupt => "corrupt",
            FaultKind::Locked => "locked",
            FaultKind::Full => "full",
            FaultKind::Unwritable => "unwritable",
            FaultKind::Migration => "migration",
            FaultKind::Other => "error",
        }
    }
}

/// A failed state-store operation, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database reported an error.
    #[error("{path}: {kind}: {source}", kind = .kind.as_str())]
    Db {
        /// The database file.
        path: PathBuf,
        /// The classified fault.
        kind: FaultKind,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("{path}: migration: {source}")]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A filesystem step around the database failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be encoded for storage.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// No database is open (memory-only mode).
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

impl StateError {
    /// The fault class, for the reaction and the health report.
    pub fn kind(&self) -> FaultKind {
        match self {
            StateError::Db { kind, .. } => *kind,
            StateError::Migrate { .. } => FaultKind::Migration,
            StateError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    FaultKind::Unwritable
                }
                std::io::ErrorKind::StorageFull => FaultKind::Full,
                _ => FaultKind::Other,
            },
            StateError::Encode { .. } | StateError::Unavailable(_) => FaultKind::Other,
        }
    }

    /// Wraps a driver error for `path`, classifying SQLite's result code.
    pub fn db(path: &std::path::Path, source: sqlx::Error) -> StateError {
        StateError::Db {
            path: path.to_path_buf(),
            kind: classify(&source),
            source,
        }
    }
}

/// Maps SQLite's primary result codes (and IO errors) to a fault class.
pub fn classify(e: &sqlx::Error) -> FaultKind {
    match e {
        sqlx::Error::Database(d) => {
            let code: i64 = d.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            match code & 0xff {
                11 | 26 => FaultKind::Corrupt,
                5 | 6 => FaultKind::Locked,
                13 => FaultKind::Full,
                3 | 8 | 14 => FaultKind::Unwritable,
                10 if d.message().contains("disk I/O") => FaultKind::Unwritable,
                _ => FaultKind::Other,
            }
        }
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                FaultKind::Unwritable
            }
            std::io::ErrorKind::StorageFull => FaultKind::Full,
            _ => FaultKind::Other,
        },
        _ => FaultKind::Other,
    }
}
