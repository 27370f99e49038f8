//! Walking one segment's records in order and handing them to a sink: the store at start-up, a vector in tests.
//!
//! The walk stops at the first record that is truncated, fails its checksum or does not decode; everything
//! before it has been delivered, nothing after it is.

use std::hash::{Hash, Hasher};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::model::{Labels, SampleValue, Timestamp};
use crate::store::{AppendError, Appended, SeriesRef, Store};

use super::record::{
    Frame, MAGIC, Sample, TYPE_SAMPLES, TYPE_SERIES, decode_samples, decode_series, next_frame,
};

/// Receives a segment's contents, one intact record at a time.
pub(crate) trait Sink {
    /// Series `id` (the next id of the segment) names `labels`.
    fn series(&mut self, id: u32, labels: Labels);
    /// The samples of one record, in write order; every id has been declared.
    fn samples(&mut self, batch: &[Sample<'_>]);
}

/// What walking one segment found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Walk {
    /// Bytes from the start up to the end of the last intact record (the good prefix).
    pub valid_len: usize,
    /// Intact records.
    pub records: u64,
    /// Series declarations.
    pub series: u64,
    /// Samples delivered.
    pub samples: u64,
    /// Newest sample timestamp (`Timestamp::MIN` if none).
    pub max_ts: Timestamp,
    /// Why the walk stopped early, if it did.
    pub error: Option<String>,
}

/// Walks `seg` (a whole segment file) into `sink`.
pub(crate) fn walk(seg: &[u8], sink: &mut impl Sink) -> Walk {
    let mut w = Walk {
        max_ts: Timestamp::MIN,
        ..Walk::default()
    };
    if seg.is_empty() {
        return w;
    }
    if seg.len() < MAGIC.len() || seg[..MAGIC.len()] != MAGIC {
        w.error = Some(if MAGIC.starts_with(seg) {
            "truncated segment header".into()
        } else {
            "not a klaxon WAL segment (bad magic)".into()
        });
        return w;
    }
    let mut pos = MAGIC.len();
    w.valid_len = pos;
    let mut declared: u32 = 0;
    let mut series_buf: Vec<(u32, Labels)> = Vec::new();
    let mut samples_buf: Vec<Sample<'_>> = Vec::new();
    loop {
        let (ty, payload, next) = match next_frame(seg, pos) {
            Frame::End => break,
            Frame::Bad(reason) => {
                w.error = Some(reason);
                break;
            }
            Frame::Record { ty, payload, next } => (ty, payload, next),
        };
        match ty {
            TYPE_SERIES => {
                series_buf.clear();
                if let Err(e) = decode_series(payload, declared, &mut series_buf) {
                    w.error = Some(format!("malformed series record: {e}"));
                    break;
                }
                for (id, labels) in series_buf.drain(..) {
                    sink.series(id, labels);
                    declared += 1;
                    w.series += 1;
                }
            }
            TYPE_SAMPLES => {
                samples_buf.clear();
                if let Err(e) = decode_samples(payload, declared, &mut samples_buf) {
                    w.error = Some(format!("malformed samples record: {e}"));
                    break;
                }
                for s in &samples_buf {
                    w.max_ts = w.max_ts.max(s.t);
                }
                sink.samples(&samples_buf);
                w.samples += samples_buf.len() as u64;
            }
            other => {
                w.error = Some(format!("unknown record type {other}"));
                break;
            }
        }
        w.records += 1;
        pos = next;
        w.valid_len = pos;
    }
    w
}

/// Sample outcomes of a replay into the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayCounts {
    /// Samples stored.
    pub stored: u64,
    /// Exact repeats of a series' newest sample (a retried push): accepted, not stored again.
    pub duplicates: u64,
    /// Samples the store refused (out of order, invalid labels, series limit).
    pub dropped: u64,
    /// Samples older than the retention window, skipped.
    pub too_old: u64,
}

/// Samples handed to one replay worker, in order.
type LaneBatch = Vec<(SeriesRef, Timestamp, SampleValue)>;
/// Samples per hand-over to a worker.
const LANE_BATCH: usize = 8192;

enum Slot {
    /// Declared, not yet needed: created on the first sample inside the retention window.
    Pending(Labels),
    /// Resolved, with the worker lane that owns the series (so its samples stay in order).
    Ref(SeriesRef, usize),
    Rejected,
}

/// The way to one worker: a batch being filled, the channel, and emptied batches coming back.
struct Lane {
    buf: LaneBatch,
    tx: SyncSender<LaneBatch>,
    free: Receiver<LaneBatch>,
}

impl Lane {
    /// Hands the current batch over; `Err` with the sample count if the worker is gone.
    fn flush(&mut self) -> Result<(), usize> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(LANE_BATCH));
        let full = std::mem::replace(&mut self.buf, next);
        self.tx.send(full).map_err(|e| e.0.len())
    }
}

fn count(c: &mut ReplayCounts, r: Result<Appended, AppendError>) {
    match r {
        Ok(Appended::Stored) => c.stored += 1,
        Ok(Appended::Duplicate) => c.duplicates += 1,
        Err(_) => c.dropped += 1,
    }
}

/// Replays into a `Store` through resolved series references (no hashing per sample). The calling thread
/// decodes and resolves series; appends run on worker lanes, each series always on the same lane.
pub(crate) struct StoreSink<'s> {
    store: &'s Store,
    min_ts: Timestamp,
    slots: Vec<Slot>,
    lanes: Vec<Lane>,
    counts: ReplayCounts,
}

/// Runs `body` with a sink over `store`, with up to `workers` threads appending (1: the calling thread).
pub(crate) fn replay_into(
    store: &Store,
    min_ts: Timestamp,
    workers: usize,
    body: impl FnOnce(&mut StoreSink<'_>),
) -> ReplayCounts {
    if workers <= 1 {
        let mut sink = StoreSink {
            store,
            min_ts,
            slots: Vec::new(),
            lanes: Vec::new(),
            counts: ReplayCounts::default(),
        };
        body(&mut sink);
        return sink.counts;
    }
    std::thread::scope(|sc| {
        let mut lanes = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = sync_channel::<LaneBatch>(4);
            let (free_tx, free_rx) = sync_channel::<LaneBatch>(8);
            handles.push(sc.spawn(move || {
                let mut c = ReplayCounts::default();
                for mut batch in rx {
                    for (r, t, v) in batch.drain(..) {
                        count(&mut c, store.append_ref(r, t, v));
                    }
                    let _ = free_tx.try_send(batch);
                }
                c
            }));
            lanes.push(Lane {
                buf: Vec::with_capacity(LANE_BATCH),
                tx,
                free: free_rx,
            });
        }
        let mut sink = StoreSink {
            store,
            min_ts,
            slots: Vec::new(),
            lanes,
            counts: ReplayCounts::default(),
        };
        body(&mut sink);
        for lane in &mut sink.lanes {
            if let Err(lost) = lane.flush() {
                sink.counts.dropped += lost as u64;
            }
        }
        let mut total = sink.counts;
        drop(sink);
        for h in handles {
            if let Ok(c) = h.join() {
                total.stored += c.stored;
                total.duplicates += c.duplicates;
                total.dropped += c.dropped;
            }
        }
        total
    })
}

impl StoreSink<'_> {
    /// Forgets the previous segment's ids (each segment numbers its series from 0).
    pub(crate) fn next_segment(&mut self) {
        self.slots.clear();
    }

    fn resolve(&mut self, id: u32) -> Option<(SeriesRef, usize)> {
        let lanes = self.lanes.len().max(1);
        let slot = self.slots.get_mut(id as usize)?;
        match slot {
            Slot::Ref(r, lane) => Some((*r, *lane)),
            Slot::Rejected => None,
            Slot::Pending(labels) => match self.store.get_or_create(labels) {
                Ok(r) => {
                    // The same series resolves to the same ref in every segment, so to the same lane.
                    let mut h = std::hash::DefaultHasher::new();
                    r.hash(&mut h);
                    let lane = (h.finish() % lanes as u64) as usize;
                    *slot = Slot::Ref(r, lane);
                    Some((r, lane))
                }
                Err(_) => {
                    *slot = Slot::Rejected;
                    None
                }
            },
        }
    }
}

impl Sink for StoreSink<'_> {
    fn series(&mut self, _id: u32, labels: Labels) {
        self.slots.push(Slot::Pending(labels));
    }

    fn samples(&mut self, batch: &[Sample<'_>]) {
        for s in batch {
            if s.t < self.min_ts {
                self.counts.too_old += 1;
                continue;
            }
            let Some((r, lane)) = self.resolve(s.id) else {
                self.counts.dropped += 1;
                continue;
            };
            let v = s.v.to_value();
            let Some(l) = self.lanes.get_mut(lane) else {
                count(&mut self.counts, self.store.append_ref(r, s.t, v));
                continue;
            };
            l.buf.push((r, s.t, v));
            if l.buf.len() >= LANE_BATCH
                && let Err(lost) = l.flush()
            {
                self.counts.dropped += lost as u64;
            }
        }
    }
}

/// Collects samples with their label sets (tests, tools).
#[derive(Default)]
pub(crate) struct CollectSink {
    labels: Vec<Labels>,
    pub out: Vec<(Labels, Timestamp, SampleValue)>,
}

impl Sink for CollectSink {
    fn series(&mut self, _id: u32, labels: Labels) {
        self.labels.push(labels);
    }

    fn samples(&mut self, batch: &[Sample<'_>]) {
        for s in batch {
            if let Some(l) = self.labels.get(s.id as usize) {
                self.out.push((l.clone(), s.t, s.v.to_value()));
            }
        }
    }
}
