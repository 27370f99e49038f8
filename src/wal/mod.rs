//! Write-ahead log of pushed samples, so the range windows rules read are whole again after a restart.
//!
//! Layout: `<data-dir>/wal/NNNNNNNNNN.wal`, segments numbered in write order. Each process start replays every
//! segment into the store (skipping samples older than the retention window), then opens a fresh segment; a
//! segment is never appended to after it is closed. A segment is closed when it reaches `segment_bytes`
//! (64 MiB by default; one request's batch may overshoot it), and deleted whole once its newest sample is
//! older than `now - retention`.
//!
//! Records (see `record.rs`): a series record gives a label set a compact per-segment id the first time the
//! segment sees that series; a samples record carries one ingestion request as (id, timestamp, value)
//! triples. Every record has a length and a CRC-32. Because series ids are declared again in every segment,
//! each segment replays on its own: retention needs no checkpoint and a damaged segment does not make the
//! next one unreadable.
//!
//! Durability ([`FsyncPolicy`]): the batch is written (one `write` call) before the push is acknowledged, so
//! an acknowledged sample survives a crash of the process. With `request` the segment is also fsynced before
//! the acknowledgement (concurrent requests share one fsync); with an interval `N` a background thread
//! fsyncs every `N`, so after a power loss or kernel crash at most the last `N` of acknowledged samples can
//! be missing. Segments are always fsynced when they are closed.
//!
//! Corruption: replay stops at the first record of a segment that is truncated, fails its checksum or does
//! not decode. The good prefix is kept, the rest is copied to `NNNNNNNNNN.wal.corrupt` and cut off the
//! segment (so the next start is clean), and the file, byte offset and reason are logged and shown in
//! `/health/detailed` (degraded until the next start). Replay then continues with the later segments: they
//! declare their own series, so they are readable, and a gap in the middle of a window is better than
//! dropping the newer samples too.
//!
//! Replay speed: the calling thread reads and decodes; store appends run on one worker per core (at most 4),
//! each series always on the same worker so its samples stay in order. About 2 s for 1 h of 100k series at
//! 15 s on two cores (BENCHMARKS.md, "Durability (WAL)").
//!
//! Failures: an unwritable, missing or full directory never stops the server. Appends fail with a
//! [`WalError`] naming the operation and the path (the ingest API answers 503 and stores nothing), the
//! health check reports it, and the next append after a one-second back-off tries again.
//!
//! Known limit: replay applies requests in WAL order. Two concurrent pushes of the *same* series whose
//! timestamps cross (the later-logged request carrying the older sample) are stored in arrival order live
//! but may lose the older sample on replay, as an out-of-order append. Only pushed samples are logged:
//! recording-rule results and `ALERTS` are recomputed by the rules after a restart, not replayed.

mod crc;
mod record;
mod replay;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ahash::AHashMap;
use parking_lot::Mutex;
use serde::Serialize;

pub use replay::ReplayCounts;

use crate::model::{Labels, SampleValue, Timestamp};
use crate::store::Store;
use record::{
    MAGIC, TYPE_SAMPLES, TYPE_SERIES, begin_record, finish_record, put_base, put_sample, put_series,
};
use replay::{CollectSink, replay_into, walk};

/// Default segment size: large enough that closing segments is rare, small enough that retention frees
/// space in steps.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Smallest accepted `--wal-segment-size`.
pub const MIN_SEGMENT_BYTES: u64 = 4 << 10;
/// After a failed attempt to open a segment, appends fail fast for this long before trying again.
const REOPEN_BACKOFF: Duration = Duration::from_secs(1);
/// Most threads appending to the store during replay (the calling thread decodes).
const MAX_REPLAY_WORKERS: usize = 4;

/// When appended samples are fsynced; chosen per deployment because durability costs throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// No WAL: the server opens none and pushed samples are lost on restart.
    Off,
    /// fsync before every acknowledgement (concurrent requests share one fsync).
    Request,
    /// Group commit: a background thread fsyncs this often; a crash of the machine loses at most this much.
    Interval(Duration),
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(FsyncPolicy::Off),
            "request" => Ok(FsyncPolicy::Request),
            d => match crate::expr::parse_duration(d) {
                Ok(ms) if ms > 0 => Ok(FsyncPolicy::Interval(Duration::from_millis(ms as u64))),
                _ => Err(format!(
                    "invalid WAL fsync policy {s:?}: expected `request`, `off` or a positive duration such as `100ms` or `1s`"
                )),
            },
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Off => f.write_str("off"),
            FsyncPolicy::Request => f.write_str("request"),
            FsyncPolicy::Interval(d) if d.as_millis() % 1000 == 0 => write!(f, "{}s", d.as_secs()),
            FsyncPolicy::Interval(d) => write!(f, "{}ms", d.as_millis()),
        }
    }
}

/// Parses a byte size such as `64MiB`, `512KiB`, `1GB` or `1048576`, for `--wal-segment-size`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!(
            "invalid size {s:?}: expected a number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)"
        )
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "Ki" => 1 << 10,
        "MiB" | "Mi" => 1 << 20,
        "GiB" | "Gi" => 1 << 30,
        "KB" | "kB" | "K" | "k" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(mult).ok_or_else(bad)?;
    if v < MIN_SEGMENT_BYTES {
        return Err(format!(
            "size {s:?} is below the minimum of {MIN_SEGMENT_BYTES} bytes"
        ));
    }
    Ok(v)
}

/// Where and how the WAL writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Directory of the segments (the server uses `<data-dir>/wal`).
    pub dir: PathBuf,
    /// When appends are fsynced.
    pub fsync: FsyncPolicy,
    /// A segment is closed once it holds this many bytes.
    pub segment_bytes: u64,
}

impl WalOptions {
    /// Defaults (`1s` group commit, 64 MiB segments) in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalOptions {
            dir: dir.into(),
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// A WAL operation that failed; every message names the operation and the path.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The operating system refused an operation.
    #[error("WAL: {op} {}: {source}", path.display())]
    Io {
        /// What was being done (`creating segment`, `writing segment`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The WAL cannot take the write for a reason of its own (earlier failure, oversized batch).
    #[error("WAL: {op} {}: {reason}", path.display())]
    Unavailable {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
}

impl WalError {
    /// A copy with the same message (`io::Error` is not `Clone`).
    fn duplicate(&self) -> WalError {
        match self {
            WalError::Io { op, path, source } => WalError::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            WalError::Unavailable { op, path, reason } => WalError::Unavailable {
                op,
                path: path.clone(),
                reason: reason.clone(),
            },
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WalError + use<> {
    let path = path.to_path_buf();
    move |source| WalError::Io { op, path, source }
}

/// A damaged segment found by replay: where, why, and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Corruption {
    /// The segment file.
    pub file: PathBuf,
    /// Byte offset of the first bad record; everything before it was replayed.
    pub offset: u64,
    /// What is wrong at `offset`.
    pub reason: String,
    /// Bytes from `offset` to the end of the file, not replayed.
    pub dropped_bytes: u64,
    /// Where the dropped bytes were saved before the segment was cut back to `offset`.
    pub moved_to: Option<PathBuf>,
    /// Why the segment could not be cut back (it is then reported again at the next start).
    pub repair_error: Option<String>,
}

/// What start-up replay read and stored, for the log and `/health/detailed`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    /// Segments read.
    pub segments: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Intact records.
    pub records: u64,
    /// Series declarations (a series is declared once per segment it appears in).
    pub series_records: u64,
    /// Samples decoded.
    pub samples: u64,
    /// What the store did with them.
    pub counts: ReplayCounts,
    /// Wall time of the replay.
    pub duration_ms: f64,
    /// Damaged segments (good prefix kept).
    pub corruptions: Vec<Corruption>,
    /// Segments or directories that could not be read at all.
    pub errors: Vec<String>,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TruncateOutcome {
    /// Segments deleted.
    pub segments: usize,
    /// Their size.
    pub bytes: u64,
}

/// One segment on disk, for tests and the health details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentInfo {
    /// Sequence number (file name).
    pub seq: u64,
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// Newest sample timestamp (`i64::MIN` when empty).
    pub max_ts: Timestamp,
    /// Whether appends go to this segment.
    pub active: bool,
}

/// The WAL's state for `/health/detailed`.
#[derive(Debug, Clone, Serialize)]
pub struct WalHealth {
    /// False while appends fail, after replay found damage, or while old segments cannot be deleted.
    pub healthy: bool,
    /// One line: what is wrong and where, or that all is well.
    pub message: String,
    /// The segment directory.
    pub dir: PathBuf,
    /// The fsync policy.
    pub fsync: String,
    /// Segment size limit.
    pub segment_bytes: u64,
    /// Segments on disk (known to this process).
    pub segments: usize,
    /// Their total size.
    pub disk_bytes: u64,
    /// The segment appends go to, if one is open.
    pub active_segment: Option<PathBuf>,
    /// Appends refused because the WAL could not write.
    pub appends_failed: u64,
    /// The current failure, if appends are failing now.
    pub error: Option<String>,
    /// The most recent failure, even if resolved since.
    pub last_error: Option<String>,
    /// Why the last retention pass could not delete a segment.
    pub truncate_error: Option<String>,
    /// Start-up replay.
    pub replay: ReplayReport,
}

/// The samples in a segment's bytes up to the first bad record, with the reason it stopped (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct SegmentContents {
    /// Every sample of the intact records, in write order.
    pub samples: Vec<(Labels, Timestamp, SampleValue)>,
    /// Length of the intact prefix.
    pub valid_len: usize,
    /// Why reading stopped before the end, if it did.
    pub error: Option<String>,
}

/// Decodes a whole segment file's bytes; never panics, whatever the input.
pub fn read_segment(bytes: &[u8]) -> SegmentContents {
    let mut sink = CollectSink::default();
    let w = walk(bytes, &mut sink);
    SegmentContents {
        samples: sink.out,
        valid_len: w.valid_len,
        error: w.error,
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:010}.wal"))
}

fn corrupt_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:010}.wal.corrupt"))
}

/// Segment files in `dir`, by sequence number.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("reading directory", dir))? {
        let entry = entry.map_err(io_err("reading directory", dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if !stem.is_empty()
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(seq) = stem.parse::<u64>()
        {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|s| s.0);
    Ok(out)
}

/// Saves the bad tail of a segment next to it and cuts the segment back to its good prefix.
fn repair(
    dir: &Path,
    seq: u64,
    path: &Path,
    bytes: &[u8],
    valid_len: usize,
) -> Result<PathBuf, WalError> {
    let tail = corrupt_path(dir, seq);
    let mut f = File::create(&tail).map_err(io_err("creating", &tail))?;
    f.write_all(&bytes[valid_len..])
        .and_then(|()| f.sync_all())
        .map_err(io_err("writing", &tail))?;
    let seg = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("opening segment", path))?;
    seg.set_len(valid_len as u64)
        .and_then(|()| seg.sync_all())
        .map_err(io_err("truncating segment", path))?;
    Ok(tail)
}

/// The segment appends go to.
#[derive(Debug)]
struct Active {
    seq: u64,
    path: PathBuf,
    file: Arc<File>,
    bytes: u64,
    max_ts: Timestamp,
    /// Next per-segment series id.
    next_id: u32,
    /// `Wal::written` when the segment was opened: positions above it live in this segment.
    start_pos: u64,
}

/// A segment that takes no more appends.
#[derive(Debug, Clone)]
struct Closed {
    seq: u64,
    path: PathBuf,
    bytes: u64,
    max_ts: Timestamp,
}

impl Active {
    fn close(&self) -> Closed {
        Closed {
            seq: self.seq,
            path: self.path.clone(),
            bytes: self.bytes,
            max_ts: self.max_ts,
        }
    }
}

/// Writer state, behind one mutex: appends are serialized.
#[derive(Debug, Default)]
struct Inner {
    active: Option<Active>,
    closed: Vec<Closed>,
    next_seq: u64,
    /// Series key → id in the active segment (cleared with every new segment).
    ids: AHashMap<u128, u32>,
    buf: Vec<u8>,
    batch_ids: Vec<u32>,
    /// No new segment is tried before this instant after a failure.
    retry_at: Option<Instant>,
    /// The failure that started the back-off, repeated to appends until the next attempt.
    open_error: Option<WalError>,
    /// Positions `(from, to]` written to a segment that was dropped without a successful fsync.
    lost: (u64, u64),
}

/// Health bookkeeping, separate from the writer state so failures can be noted without the writer lock.
#[derive(Debug, Default)]
struct HealthState {
    failing: Option<String>,
    last_error: Option<String>,
    appends_failed: u64,
    truncate_error: Option<String>,
    replay: ReplayReport,
}

/// The write-ahead log: append before acknowledging, replay at start, truncate with retention.
pub struct Wal {
    opts: WalOptions,
    inner: Mutex<Inner>,
    /// Serializes fsyncs so concurrent `request`-policy appends share one.
    sync_lock: Mutex<()>,
    /// Record bytes written since start (a position, never reused).
    written: AtomicU64,
    /// Positions up to here are known to be on stable storage.
    synced: AtomicU64,
    health: Mutex<HealthState>,
    /// Two independent random keys: a label set's 128-bit key stands for it in the id table.
    hash_a: ahash::RandomState,
    hash_b: ahash::RandomState,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.opts.dir)
            .field("fsync", &self.opts.fsync)
            .field("written", &self.written.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the WAL in `opts.dir`, replays every segment into `store` (samples older than `min_ts` are
    /// skipped), deletes segments older than `min_ts` and opens a fresh segment.
    ///
    /// Never fails: problems (unwritable directory, damaged segments) are logged, kept for [`Wal::health`],
    /// and make appends fail until they are resolved.
    pub fn open(opts: WalOptions, store: &Store, min_ts: Timestamp) -> (Arc<Wal>, ReplayReport) {
        let wal = Arc::new(Wal {
            opts,
            inner: Mutex::new(Inner::default()),
            sync_lock: Mutex::new(()),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            health: Mutex::new(HealthState::default()),
            hash_a: ahash::RandomState::new(),
            hash_b: ahash::RandomState::new(),
        });
        let report = wal.startup(store, min_ts);
        if let FsyncPolicy::Interval(every) = wal.opts.fsync {
            spawn_syncer(&wal, every);
        }
        (wal, report)
    }

    /// The options in force.
    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    fn startup(&self, store: &Store, min_ts: Timestamp) -> ReplayReport {
        let started = Instant::now();
        let dir = self.opts.dir.clone();
        let mut report = ReplayReport::default();
        if let Err(e) = fs::create_dir_all(&dir) {
            self.note_failure(&io_err("creating directory", &dir)(e));
        }
        let segments = match list_segments(&dir) {
            Ok(s) => s,
            Err(e) => {
                if dir.exists() {
                    report.errors.push(e.to_string());
                }
                Vec::new()
            }
        };
        let mut closed = Vec::with_capacity(segments.len());
        let mut next_seq = 1;
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_REPLAY_WORKERS);
        report.counts = replay_into(store, min_ts, workers, |sink| {
            for (seq, path) in segments {
                next_seq = seq + 1;
                let bytes = match fs::read(&path) {
                    Ok(b) => b,
                    Err(e) => {
                        let e = io_err("reading segment", &path)(e);
                        tracing::error!(event_type = "error", error = %e, "WAL segment unreadable; skipped");
                        report.errors.push(e.to_string());
                        continue;
                    }
                };
                sink.next_segment();
                let w = walk(&bytes, sink);
                report.segments += 1;
                report.bytes += bytes.len() as u64;
                report.records += w.records;
                report.series_records += w.series;
                report.samples += w.samples;
                let mut size = bytes.len() as u64;
                if let Some(reason) = w.error {
                    let mut c = Corruption {
                        file: path.clone(),
                        offset: w.valid_len as u64,
                        reason,
                        dropped_bytes: (bytes.len() - w.valid_len) as u64,
                        moved_to: None,
                        repair_error: None,
                    };
                    match repair(&dir, seq, &path, &bytes, w.valid_len) {
                        Ok(tail) => {
                            c.moved_to = Some(tail);
                            size = w.valid_len as u64;
                        }
                        Err(e) => c.repair_error = Some(e.to_string()),
                    }
                    tracing::error!(
                        event_type = "error",
                        file = %c.file.display(),
                        offset = c.offset,
                        reason = %c.reason,
                        dropped_bytes = c.dropped_bytes,
                        moved_to = c.moved_to.as_ref().map(|p| p.display().to_string()),
                        repair_error = c.repair_error,
                        "WAL segment damaged: replayed the good prefix, later segments still replayed"
                    );
                    report.corruptions.push(c);
                }
                closed.push(Closed {
                    seq,
                    path,
                    bytes: size,
                    max_ts: w.max_ts,
                });
            }
        });
        report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        {
            let mut inner = self.inner.lock();
            inner.closed = closed;
            inner.next_seq = next_seq;
        }
        if let Err(e) = self.truncate(min_ts) {
            tracing::error!(event_type = "error", error = %e, "WAL retention failed");
        }
        {
            let mut inner = self.inner.lock();
            let pos = self.written.load(Ordering::Acquire);
            if let Err(e) = inner.open_segment(&dir, pos) {
                inner.retry_at = Some(Instant::now() + REOPEN_BACKOFF);
                inner.open_error = Some(e.duplicate());
                drop(inner);
                self.note_failure(&e);
            }
        }
        tracing::info!(
            event_type = "system",
            dir = %dir.display(),
            fsync = %self.opts.fsync,
            segments = report.segments,
            bytes = report.bytes,
            samples = report.samples,
            stored = report.counts.stored,
            too_old = report.counts.too_old,
            dropped = report.counts.dropped,
            corrupt_segments = report.corruptions.len(),
            duration_ms = report.duration_ms,
            "WAL replayed"
        );
        self.health.lock().replay = report.clone();
        report
    }

    /// A 128-bit key for a label set: collisions are out of reach (random keys, two independent hashes).
    /// The pairs are laid out in `scratch` first (0xff never occurs in UTF-8), so each hash is one pass.
    fn key(&self, l: &Labels, scratch: &mut Vec<u8>) -> u128 {
        scratch.clear();
        for p in l {
            scratch.extend_from_slice(p.name.as_bytes());
            scratch.push(0xff);
            scratch.extend_from_slice(p.value.as_bytes());
            scratch.push(0xff);
        }
        let b: &[u8] = scratch;
        (u128::from(self.hash_a.hash_one(b)) << 64) | u128::from(self.hash_b.hash_one(b))
    }

    /// Writes `batch` as one record (plus declarations of series new to the segment); with the `request`
    /// policy also fsyncs. On `Ok` the batch is in the log; on `Err` the caller must not store it.
    pub fn append(&self, batch: &[(Labels, Timestamp, SampleValue)]) -> Result<(), WalError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut scratch = Vec::with_capacity(256);
        let keys: Vec<u128> = batch
            .iter()
            .map(|(l, _, _)| self.key(l, &mut scratch))
            .collect();
        let end = {
            let mut inner = self.inner.lock();
            self.write_locked(&mut inner, batch, &keys)
        };
        let res = match end {
            Ok(end) if self.opts.fsync == FsyncPolicy::Request => self.sync_to(end),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        match &res {
            Ok(()) => {
                let mut h = self.health.lock();
                if h.failing.is_some() {
                    h.failing = None;
                    drop(h);
                    tracing::info!(event_type = "system", dir = %self.opts.dir.display(), "WAL writable again");
                }
            }
            Err(e) => {
                self.note_failure(e);
                self.health.lock().appends_failed += 1;
            }
        }
        res
    }

    fn write_locked(
        &self,
        inner: &mut Inner,
        batch: &[(Labels, Timestamp, SampleValue)],
        keys: &[u128],
    ) -> Result<u64, WalError> {
        let dir = &self.opts.dir;
        let full = inner
            .active
            .as_ref()
            .map(|a| a.bytes >= self.opts.segment_bytes);
        if full != Some(false) {
            if full.is_none()
                && let Some(t) = inner.retry_at
                && Instant::now() < t
                && let Some(e) = &inner.open_error
            {
                return Err(e.duplicate());
            }
            let pos = self.written.load(Ordering::Acquire);
            let opened = if full == Some(true) {
                inner.rotate(dir, pos, &self.synced)
            } else {
                inner.open_segment(dir, pos)
            };
            if let Err(e) = opened {
                inner.retry_at = Some(Instant::now() + REOPEN_BACKOFF);
                inner.open_error = Some(e.duplicate());
                return Err(e);
            }
            inner.retry_at = None;
            inner.open_error = None;
        }
        let Inner {
            active,
            ids,
            buf,
            batch_ids,
            lost,
            closed,
            ..
        } = inner;
        let Some(a) = active.as_mut() else {
            return Err(WalError::Unavailable {
                op: "appending in",
                path: dir.clone(),
                reason: "no segment open".into(),
            });
        };
        buf.clear();
        batch_ids.clear();
        let first_new = a.next_id;
        let mut series_rec = None;
        let mut overflow = false;
        for ((labels, _, _), key) in batch.iter().zip(keys) {
            let id = match ids.entry(*key) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let id = a.next_id;
                    let Some(next) = id.checked_add(1) else {
                        overflow = true;
                        break;
                    };
                    a.next_id = next;
                    series_rec.get_or_insert_with(|| begin_record(buf, TYPE_SERIES));
                    put_series(buf, id, labels);
                    e.insert(id);
                    id
                }
            };
            batch_ids.push(id);
        }
        let mut max_ts = a.max_ts;
        let mut ok = !overflow;
        if ok && let Some(start) = series_rec {
            ok = finish_record(buf, start).is_some();
        }
        if ok {
            let start = begin_record(buf, TYPE_SAMPLES);
            let base = batch[0].1;
            put_base(buf, base);
            let mut prev = 0;
            for ((_, t, v), &id) in batch.iter().zip(batch_ids.iter()) {
                put_sample(buf, id, prev, base, *t, v);
                prev = id;
                max_ts = max_ts.max(*t);
            }
            ok = finish_record(buf, start).is_some();
        }
        let rollback = |ids: &mut AHashMap<u128, u32>, a: &mut Active| {
            ids.retain(|_, id| *id < first_new);
            a.next_id = first_new;
        };
        if !ok {
            rollback(ids, a);
            return Err(WalError::Unavailable {
                op: "appending to segment",
                path: a.path.clone(),
                reason: "batch too large for one record (4 GiB)".into(),
            });
        }
        if let Err(e) = (&*a.file).write_all(buf) {
            rollback(ids, a);
            let err = io_err("writing segment", &a.path)(e);
            // Cut the partial record off; if that fails too, give the segment up (replay will stop there).
            if a.file.set_len(a.bytes).is_err() {
                let pos = self.written.load(Ordering::Acquire);
                *lost = (a.start_pos, pos);
                closed.push(a.close());
                *active = None;
                ids.clear();
            }
            return Err(err);
        }
        a.bytes += buf.len() as u64;
        a.max_ts = max_ts;
        Ok(self.written.fetch_add(buf.len() as u64, Ordering::AcqRel) + buf.len() as u64)
    }

    /// fsyncs until position `target` is durable; shares the fsync with concurrent callers.
    fn sync_to(&self, target: u64) -> Result<(), WalError> {
        let lost = |inner: &Inner| inner.lost.0 < target && target <= inner.lost.1;
        let lost_err = || WalError::Unavailable {
            op: "fsyncing in",
            path: self.opts.dir.clone(),
            reason: "the segment holding these samples was closed after a write or fsync error"
                .into(),
        };
        let _s = self.sync_lock.lock();
        let (file, path, upto, seq) = {
            let inner = self.inner.lock();
            if lost(&inner) {
                return Err(lost_err());
            }
            if self.synced.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            match &inner.active {
                Some(a) if target > a.start_pos => (
                    Arc::clone(&a.file),
                    a.path.clone(),
                    self.written.load(Ordering::Acquire),
                    a.seq,
                ),
                _ => return Err(lost_err()),
            }
        };
        match file.sync_data() {
            Ok(()) => {
                self.synced.fetch_max(upto, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                let err = io_err("fsyncing segment", &path)(e);
                // The page cache may have dropped the dirty pages: nothing in this segment is trustworthy.
                let mut inner = self.inner.lock();
                if let Some(a) = inner.active.take_if(|a| a.seq == seq) {
                    let pos = self.written.load(Ordering::Acquire);
                    inner.lost = (a.start_pos, pos);
                    inner.closed.push(a.close());
                    inner.ids.clear();
                }
                drop(inner);
                self.note_failure(&err);
                Err(err)
            }
        }
    }

    /// The position to fsync up to, if the active segment holds unsynced records.
    fn pending_sync(&self) -> Option<u64> {
        let target = self.written.load(Ordering::Acquire);
        if target <= self.synced.load(Ordering::Acquire) {
            return None;
        }
        let inner = self.inner.lock();
        inner
            .active
            .as_ref()
            .filter(|a| target > a.start_pos)
            .map(|_| target)
    }

    /// fsyncs everything appended to the active segment so far (shutdown, tests); closed segments were
    /// fsynced when they were closed.
    pub fn sync(&self) -> Result<(), WalError> {
        match self.pending_sync() {
            Some(target) => self.sync_to(target),
            None => Ok(()),
        }
    }

    /// Deletes every closed segment whose newest sample is older than `cutoff` (closing the active segment
    /// first if all of it is that old).
    pub fn truncate(&self, cutoff: Timestamp) -> Result<TruncateOutcome, WalError> {
        let dir = &self.opts.dir;
        let old: Vec<Closed> = {
            let mut inner = self.inner.lock();
            let idle_old = inner
                .active
                .as_ref()
                .is_some_and(|a| a.max_ts != Timestamp::MIN && a.max_ts < cutoff);
            if idle_old {
                let pos = self.written.load(Ordering::Acquire);
                if let Err(e) = inner.rotate(dir, pos, &self.synced) {
                    inner.retry_at = Some(Instant::now() + REOPEN_BACKOFF);
                    inner.open_error = Some(e.duplicate());
                    drop(inner);
                    self.note_failure(&e);
                    inner = self.inner.lock();
                }
            }
            let (old, keep): (Vec<Closed>, Vec<Closed>) =
                inner.closed.drain(..).partition(|c| c.max_ts < cutoff);
            inner.closed = keep;
            old
        };
        let mut out = TruncateOutcome::default();
        let mut first_err = None;
        let mut failed = Vec::new();
        for c in old {
            match fs::remove_file(&c.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_err.get_or_insert(io_err("deleting segment", &c.path)(e));
                    failed.push(c);
                    continue;
                }
            }
            let _ = fs::remove_file(corrupt_path(dir, c.seq));
            out.segments += 1;
            out.bytes += c.bytes;
        }
        if !failed.is_empty() {
            let mut inner = self.inner.lock();
            inner.closed.extend(failed);
            inner.closed.sort_unstable_by_key(|c| c.seq);
        }
        if out.segments > 0 {
            tracing::debug!(
                event_type = "system",
                segments = out.segments,
                bytes = out.bytes,
                "WAL segments deleted by retention"
            );
        }
        self.health.lock().truncate_error = first_err.as_ref().map(|e| e.to_string());
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The segments this process knows, oldest first (the active one last).
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let inner = self.inner.lock();
        let mut out: Vec<SegmentInfo> = inner
            .closed
            .iter()
            .map(|c| SegmentInfo {
                seq: c.seq,
                path: c.path.clone(),
                bytes: c.bytes,
                max_ts: c.max_ts,
                active: false,
            })
            .collect();
        if let Some(a) = &inner.active {
            out.push(SegmentInfo {
                seq: a.seq,
                path: a.path.clone(),
                bytes: a.bytes,
                max_ts: a.max_ts,
                active: true,
            });
        }
        out
    }

    /// The health check's view: healthy, or what is wrong and where.
    pub fn health(&self) -> WalHealth {
        let segments = self.segments();
        let h = self.health.lock();
        let corrupt = h.replay.corruptions.len();
        let mut problems = Vec::new();
        if let Some(e) = &h.failing {
            problems.push(format!("appends failing: {e}"));
        }
        if corrupt > 0 {
            let first = &h.replay.corruptions[0];
            problems.push(format!(
                "replay found {corrupt} damaged segment(s), e.g. {} at byte {}: {}; the good prefix was kept",
                first.file.display(),
                first.offset,
                first.reason
            ));
        }
        if !h.replay.errors.is_empty() {
            problems.push(format!(
                "replay could not read: {}",
                h.replay.errors.join("; ")
            ));
        }
        if let Some(e) = &h.truncate_error {
            problems.push(format!("retention cannot delete old segments: {e}"));
        }
        let healthy = problems.is_empty();
        WalHealth {
            healthy,
            message: if healthy {
                format!("write-ahead log OK (fsync {})", self.opts.fsync)
            } else {
                problems.join("; ")
            },
            dir: self.opts.dir.clone(),
            fsync: self.opts.fsync.to_string(),
            segment_bytes: self.opts.segment_bytes,
            disk_bytes: segments.iter().map(|s| s.bytes).sum(),
            active_segment: segments.iter().find(|s| s.active).map(|s| s.path.clone()),
            segments: segments.len(),
            appends_failed: h.appends_failed,
            error: h.failing.clone(),
            last_error: h.last_error.clone(),
            truncate_error: h.truncate_error.clone(),
            replay: h.replay.clone(),
        }
    }

    fn note_failure(&self, e: &WalError) {
        let msg = e.to_string();
        let mut h = self.health.lock();
        let new = h.failing.as_deref() != Some(msg.as_str());
        h.failing = Some(msg.clone());
        h.last_error = Some(msg);
        drop(h);
        if new {
            tracing::error!(event_type = "error", error = %e, "WAL write failed; pushes are refused until it works again");
        }
    }
}

impl Inner {
    /// Creates segment `next_seq` and makes it active (the previous active segment must be closed).
    fn open_segment(&mut self, dir: &Path, pos: u64) -> Result<(), WalError> {
        fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
        let seq = self.next_seq.max(1);
        let path = segment_path(dir, seq);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err("creating segment", &path))?;
        self.next_seq = seq + 1;
        if let Err(e) = (&file).write_all(&MAGIC) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(io_err("writing segment", &path)(e));
        }
        // Make the new directory entry durable; not every filesystem supports fsync on a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        self.ids.clear();
        self.active = Some(Active {
            seq,
            path,
            file: Arc::new(file),
            bytes: MAGIC.len() as u64,
            max_ts: Timestamp::MIN,
            next_id: 0,
            start_pos: pos,
        });
        Ok(())
    }

    /// Closes the active segment (fsynced) and opens the next one.
    fn rotate(&mut self, dir: &Path, pos: u64, synced: &AtomicU64) -> Result<(), WalError> {
        if let Some(a) = self.active.take() {
            self.ids.clear();
            self.closed.push(a.close());
            if let Err(e) = a.file.sync_data() {
                self.lost = (a.start_pos, pos);
                return Err(io_err("fsyncing segment", &a.path)(e));
            }
            synced.fetch_max(pos, Ordering::AcqRel);
        }
        self.open_segment(dir, pos)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(a) = &self.inner.get_mut().active {
            let _ = a.file.sync_data();
        }
    }
}

/// Group commit for the interval policy: fsyncs whatever was written since the last pass, every `every`.
fn spawn_syncer(wal: &Arc<Wal>, every: Duration) {
    let weak: Weak<Wal> = Arc::downgrade(wal);
    let spawned = std::thread::Builder::new()
        .name("wal-fsync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(w) = weak.upgrade() else { break };
                // Failures are recorded for the health check and logged by `sync_to`.
                let _ = w.sync();
            }
        });
    if let Err(e) = spawned {
        let err = WalError::Unavailable {
            op: "starting the fsync thread for",
            path: wal.opts.dir.clone(),
            reason: e.to_string(),
        };
        wal.note_failure(&err);
    }
}
