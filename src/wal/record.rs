//! The on-disk format: segment header, record framing and the two record bodies.
//!
//! ```text
//! segment  = MAGIC (8 bytes) record*
//! record   = len:u32le crc:u32le type:u8 payload[len]      crc = CRC-32 of type and payload
//! series   (type 1) payload = { id:uvarint n:uvarint { name:str value:str }*n }*
//! samples  (type 2) payload = base_ts:zigzag { key:uvarint dt:zigzag value }*
//!          key = zigzag(id - previous id) << 1 | is_string  (previous id starts at 0 in each record;
//!          pushes list series in a stable order, so this is mostly one byte);  t = base_ts + dt
//!          value = f64 bits, 8 bytes little-endian (float) | str (string)
//! str      = len:uvarint utf8[len]
//! ```
//!
//! Series ids are per segment, dense and declared in order (0, 1, 2, ...) before their first sample, so every
//! segment replays on its own and a reader needs only a vector indexed by id. A record is all-or-nothing: the
//! reader decodes it completely before handing anything on.

use std::sync::Arc;

use super::crc::crc32;
use crate::model::{Label, Labels, SampleValue, Timestamp};

/// First bytes of every segment: format name and version.
pub(crate) const MAGIC: [u8; 8] = *b"KLXWAL\x00\x01";
/// Bytes before a record's payload: length, checksum, type.
pub(crate) const RECORD_HEADER: usize = 9;
/// Declares series ids of the segment.
pub(crate) const TYPE_SERIES: u8 = 1;
/// A batch of samples (one ingestion request).
pub(crate) const TYPE_SAMPLES: u8 = 2;

#[inline]
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Starts a record of type `ty` at the end of `out`; returns its start for [`finish_record`].
pub(crate) fn begin_record(out: &mut Vec<u8>, ty: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(ty);
    start
}

/// Fills in length and checksum of the record begun at `start`; `None` if the payload exceeds 4 GiB.
pub(crate) fn finish_record(out: &mut [u8], start: usize) -> Option<()> {
    let len = u32::try_from(out.len() - start - RECORD_HEADER).ok()?;
    let crc = crc32(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

/// Appends one series declaration to an open series record.
pub(crate) fn put_series(out: &mut Vec<u8>, id: u32, labels: &Labels) {
    put_uvarint(out, u64::from(id));
    put_uvarint(out, labels.len() as u64);
    for l in labels {
        put_str(out, &l.name);
        put_str(out, &l.value);
    }
}

/// Appends the base timestamp that opens a samples record.
pub(crate) fn put_base(out: &mut Vec<u8>, base: Timestamp) {
    put_uvarint(out, zigzag(base));
}

/// Appends one sample to an open samples record; `prev` is the previous sample's id in the record (0 first).
#[inline]
pub(crate) fn put_sample(
    out: &mut Vec<u8>,
    id: u32,
    prev: u32,
    base: Timestamp,
    t: Timestamp,
    v: &SampleValue,
) {
    let is_str = matches!(v, SampleValue::Str(_));
    let delta = zigzag(i64::from(id) - i64::from(prev));
    put_uvarint(out, (delta << 1) | u64::from(is_str));
    put_uvarint(out, zigzag(t.wrapping_sub(base)));
    match v {
        SampleValue::Float(f) => out.extend_from_slice(&f.to_bits().to_le_bytes()),
        SampleValue::Str(s) => put_str(out, s),
    }
}

/// A sample value borrowed from a segment's bytes (no allocation for floats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    /// Float, bit-exact (stale markers included).
    F(f64),
    /// String sample.
    S(&'a str),
}

/// One decoded sample: per-segment series id, timestamp, value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample<'a> {
    pub id: u32,
    pub t: Timestamp,
    pub v: Val<'a>,
}

impl Val<'_> {
    /// The owned value the store takes.
    pub(crate) fn to_value(self) -> SampleValue {
        match self {
            Val::F(f) => SampleValue::Float(f),
            Val::S(s) => SampleValue::Str(Arc::from(s)),
        }
    }
}

/// Reads varints, strings and fixed-width values out of a payload; every read is bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    #[inline]
    fn uvarint(&mut self) -> Result<u64, &'static str> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.b.get(self.pos) else {
                return Err("varint runs past the end of the record");
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err("varint overflows 64 bits");
            }
        }
    }

    #[inline]
    fn bytes(&mut self, n: u64) -> Result<&'a [u8], &'static str> {
        let n = usize::try_from(n).map_err(|_| "length runs past the end of the record")?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("length runs past the end of the record")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self) -> Result<&'a str, &'static str> {
        let n = self.uvarint()?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| "string is not UTF-8")
    }

    #[inline]
    fn f64(&mut self) -> Result<f64, &'static str> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }
}

/// Decodes a series record; ids must continue the segment's sequence at `next_id`.
pub(crate) fn decode_series(
    payload: &[u8],
    next_id: u32,
    out: &mut Vec<(u32, Labels)>,
) -> Result<(), String> {
    let mut c = Cursor { b: payload, pos: 0 };
    let mut expect = next_id;
    while !c.done() {
        let id = c.uvarint()?;
        if id != u64::from(expect) {
            return Err(format!(
                "series id {id} out of sequence (expected {expect})"
            ));
        }
        let n = c.uvarint()?;
        if n > (payload.len() - c.pos) as u64 / 2 {
            return Err(format!("label count {n} runs past the end of the record"));
        }
        let mut labels: Vec<Label> = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name = c.str()?;
            let value = c.str()?;
            if name.is_empty() || value.is_empty() {
                return Err("empty label name or value".into());
            }
            if labels.last().is_some_and(|l| *l.name >= *name) {
                return Err("labels not sorted by name".into());
            }
            labels.push(Label {
                name: Arc::from(name),
                value: Arc::from(value),
            });
        }
        out.push((id as u32, Labels::from_sorted(labels)));
        expect = expect.checked_add(1).ok_or("series id overflows 32 bits")?;
    }
    Ok(())
}

/// Decodes a samples record into `out`; every id must be below `declared`.
pub(crate) fn decode_samples<'a>(
    payload: &'a [u8],
    declared: u32,
    out: &mut Vec<Sample<'a>>,
) -> Result<(), String> {
    let mut c = Cursor { b: payload, pos: 0 };
    let base = unzigzag(c.uvarint()?);
    let mut prev: i64 = 0;
    while !c.done() {
        let key = c.uvarint()?;
        let id = prev.wrapping_add(unzigzag(key >> 1));
        if !(0..i64::from(declared)).contains(&id) {
            return Err(format!("sample of undeclared series id {id}"));
        }
        prev = id;
        let t = base.wrapping_add(unzigzag(c.uvarint()?));
        let v = if key & 1 == 0 {
            Val::F(c.f64()?)
        } else {
            Val::S(c.str()?)
        };
        out.push(Sample {
            id: id as u32,
            t,
            v,
        });
    }
    Ok(())
}

/// One step of walking a segment's records.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A record whose checksum matches; the next one starts at `next`.
    Record {
        ty: u8,
        payload: &'a [u8],
        next: usize,
    },
    /// Clean end of the segment.
    End,
    /// The bytes at `pos` are not a whole, intact record.
    Bad(String),
}

/// Reads the record framed at `pos` of a segment.
pub(crate) fn next_frame(seg: &[u8], pos: usize) -> Frame<'_> {
    let rest = &seg[pos.min(seg.len())..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < RECORD_HEADER {
        return Frame::Bad(format!(
            "truncated record header ({} of {RECORD_HEADER} bytes)",
            rest.len()
        ));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let have = rest.len() - RECORD_HEADER;
    if len > have {
        return Frame::Bad(format!(
            "truncated record: length {len} but only {have} bytes left"
        ));
    }
    let body = &rest[8..RECORD_HEADER + len];
    let actual = crc32(body);
    if actual != crc {
        return Frame::Bad(format!(
            "checksum mismatch (stored {crc:08x}, computed {actual:08x})"
        ));
    }
    Frame::Record {
        ty: body[0],
        payload: &body[1..],
        next: pos + RECORD_HEADER + len,
    }
}
