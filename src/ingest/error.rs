//! The one error type every ingest decoder returns, carrying where in the request it went wrong.

use std::fmt;

/// What class of problem a request has; the HTTP layer maps it to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestErrorKind {
    /// Malformed text, JSON or protobuf.
    Syntax,
    /// The request (raw, decompressed or in samples) exceeds a size limit: HTTP 413.
    TooLarge,
    /// A series breaks a per-series limit or label rule: HTTP 400.
    Limit,
    /// The body encoding (gzip, snappy) is corrupt or truncated.
    Decompress,
    /// A format or encoding klaxon does not speak (e.g. remote write 2.0): HTTP 415.
    Unsupported,
}

impl IngestErrorKind {
    /// The HTTP status a server should answer with, so every endpoint maps errors the same way.
    pub fn http_status(self) -> u16 {
        match self {
            IngestErrorKind::Syntax | IngestErrorKind::Limit | IngestErrorKind::Decompress => 400,
            IngestErrorKind::TooLarge => 413,
            IngestErrorKind::Unsupported => 415,
        }
    }
}

/// Where in a request an error is, so a pusher can find the offending line or element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// The request as a whole.
    None,
    /// A 1-based line of a text body.
    Line(usize),
    /// A path into a structured body, like `samples[3].labels.job` or `timeseries[2].labels[0]`.
    Index(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::None => Ok(()),
            Location::Line(n) => write!(f, "line {n}"),
            Location::Index(p) => f.write_str(p),
        }
    }
}

/// A rejected request: the kind decides the HTTP status, location and message go to the pusher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", Prefix(&self.location), self.message)]
pub struct IngestError {
    /// Class of failure.
    pub kind: IngestErrorKind,
    /// Where in the request.
    pub location: Location,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// `"line 3: "`, `"samples[1]: "` or nothing.
struct Prefix<'a>(&'a Location);

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Location::None => Ok(()),
            l => write!(f, "{l}: "),
        }
    }
}

impl IngestError {
    /// Builds an error from its parts.
    pub fn new(kind: IngestErrorKind, location: Location, message: impl Into<String>) -> Self {
        IngestError {
            kind,
            location,
            message: message.into(),
        }
    }

    /// A syntax error on a 1-based text line.
    pub fn line(n: usize, message: impl Into<String>) -> Self {
        Self::new(IngestErrorKind::Syntax, Location::Line(n), message)
    }

    /// An error at a structured path.
    pub fn at(kind: IngestErrorKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(kind, Location::Index(path.into()), message)
    }

    /// An error about the request as a whole.
    pub fn whole(kind: IngestErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Location::None, message)
    }

    /// The HTTP status for this error (see [`IngestErrorKind::http_status`]).
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}
