//! Prometheus remote_write 1.0: snappy block-compressed protobuf `WriteRequest`s.
//!
//! The message structs are written by hand (no build script, no protoc). Each `TimeSeries` is
//! decoded on its own from a zero-copy slice of the body, so an error names `timeseries[i]`.

use prost::Message;
use prost::bytes::Bytes;

use super::series::{SeriesBuilder, too_many_samples};
use super::{Decoded, DecodedSample, IngestError, IngestErrorKind, Limits, Location};
use crate::model::SampleValue;

/// `prometheus.WriteRequest` (remote write 1.0); field 2 is reserved upstream.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// Series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (type, help, unit); counted, not stored.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: one label set and its samples.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, `__name__` included; order is not required.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars; counted, not stored.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histograms; counted, not stored.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value; empty means the label is absent.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// Value; the stale marker NaN is kept bit-exactly.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar` (decoded only to be counted).
#[derive(Clone, PartialEq, Message)]
pub struct Exemplar {
    /// Exemplar labels (trace id etc.).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// The few `prometheus.Histogram` fields klaxon looks at; the rest are skipped on decode.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    /// `count_int` (integer histograms).
    #[prost(uint64, tag = "1")]
    pub count_int: u64,
    /// Sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata` (decoded only to be counted).
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// Metric type enum value.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Outer message with series kept as raw slices, so each can be decoded and blamed on its own.
#[derive(Clone, PartialEq, Message)]
struct RawWriteRequest {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    timeseries: Vec<Bytes>,
    #[prost(bytes = "bytes", repeated, tag = "3")]
    metadata: Vec<Bytes>,
}

/// prost's message without its generic prefix and with public message names.
fn prost_reason(e: &prost::DecodeError) -> String {
    let s = e.to_string();
    let s = s
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&s);
    s.replace("RawWriteRequest", "WriteRequest")
}

/// Refuses content types other than remote write 1.0, so 2.0 senders get 415 and fall back.
pub fn check_remote_write_content_type(content_type: Option<&str>) -> Result<(), IngestError> {
    let Some(ct) = content_type else {
        return Ok(());
    };
    let mut parts = ct.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let unsupported = |what: String| Err(IngestError::whole(IngestErrorKind::Unsupported, what));
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return unsupported(format!(
            "unsupported Content-Type {ct:?}, expected application/x-protobuf"
        ));
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("proto")
        {
            let v = v.trim().trim_matches('"');
            if v != "prometheus.WriteRequest" {
                return unsupported(format!(
                    "unsupported remote write message {v:?}, only remote write 1.0 (prometheus.WriteRequest) is supported"
                ));
            }
        }
    }
    Ok(())
}

/// Decodes a snappy-compressed remote write 1.0 body into samples.
pub fn decode_remote_write(
    body: &[u8],
    limits: &Limits,
) -> Result<Vec<DecodedSample>, IngestError> {
    decode_remote_write_full(body, limits).map(|d| d.samples)
}

/// Like [`decode_remote_write`], also counting histograms, exemplars and metadata it skipped.
pub fn decode_remote_write_full(body: &[u8], limits: &Limits) -> Result<Decoded, IngestError> {
    if body.len() > limits.max_body_bytes {
        return Err(IngestError::whole(
            IngestErrorKind::TooLarge,
            format!(
                "request body is {} bytes, more than the limit of {} bytes",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let snappy_err = |e: snap::Error| {
        IngestError::whole(
            IngestErrorKind::Decompress,
            format!("invalid snappy block: {e}"),
        )
    };
    let len = snap::raw::decompress_len(body).map_err(snappy_err)?;
    if len > limits.max_decompressed_bytes {
        return Err(IngestError::whole(
            IngestErrorKind::TooLarge,
            format!(
                "snappy body decompresses to {len} bytes, more than the limit of {} bytes",
                limits.max_decompressed_bytes
            ),
        ));
    }
    let mut buf = vec![0u8; len];
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut buf)
        .map_err(snappy_err)?;
    buf.truncate(n);
    // Fast path: a zero-copy walk that borrows label strings from `buf`. It gives up on anything
    // unusual or invalid, and the prost-based path below then decides (and words any error), so
    // both paths accept exactly the same inputs with the same result.
    if let Some(out) = decode_fast(&buf, limits) {
        return Ok(out);
    }
    decode_slow(buf, limits)
}

/// Reference decoder: prost for the framing, one `TimeSeries` at a time so errors name it.
fn decode_slow(buf: Vec<u8>, limits: &Limits) -> Result<Decoded, IngestError> {
    let raw = RawWriteRequest::decode(Bytes::from(buf)).map_err(|e| {
        IngestError::whole(
            IngestErrorKind::Syntax,
            format!("invalid protobuf WriteRequest: {}", prost_reason(&e)),
        )
    })?;
    let mut out = Decoded::default();
    out.ignored.metadata = raw.metadata.len();
    let mut series = SeriesBuilder::new(limits);
    for (i, bytes) in raw.timeseries.into_iter().enumerate() {
        let at = |suffix: &str| Location::Index(format!("timeseries[{i}]{suffix}"));
        let ts = TimeSeries::decode(bytes).map_err(|e| {
            IngestError::new(
                IngestErrorKind::Syntax,
                at(""),
                format!("invalid protobuf TimeSeries: {}", prost_reason(&e)),
            )
        })?;
        out.ignored.histograms += ts.histograms.len();
        out.ignored.exemplars += ts.exemplars.len();
        if ts.samples.is_empty() {
            continue;
        }
        if ts.samples.len() > limits.max_samples.saturating_sub(out.samples.len()) {
            return Err(too_many_samples(limits, at("")));
        }
        let labels = series
            .build(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            )
            .map_err(|p| {
                let loc = match p.pair {
                    Some(j) => at(&format!(".labels[{j}]")),
                    None => at(""),
                };
                p.into_error(loc)
            })?;
        out.samples.reserve(ts.samples.len());
        for s in &ts.samples {
            out.samples
                .push((labels.clone(), s.timestamp, SampleValue::Float(s.value)));
        }
    }
    Ok(out)
}

/// Protobuf wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// A forward-only protobuf reader over a byte slice; every method returns `None` on anything
/// prost might treat differently (over-long varints, groups, bad tags), never guessing.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next `(field number, wire type)`, or `None` at the end or on a bad key.
    #[inline]
    fn key(&mut self) -> Option<(u32, u64)> {
        let k = self.varint()?;
        let field = u32::try_from(k >> 3)
            .ok()
            .filter(|&f| f >= 1 && k <= u64::from(u32::MAX))?;
        Some((field, k & 7))
    }

    #[inline]
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.buf.len() {
            return None;
        }
        let (b, rest) = self.buf.split_at(len);
        self.buf = rest;
        Some(b)
    }

    #[inline]
    fn fixed64(&mut self) -> Option<u64> {
        let (b, rest) = self.buf.split_first_chunk::<8>()?;
        self.buf = rest;
        Some(u64::from_le_bytes(*b))
    }

    /// Skips an unknown field; groups (wire types 3 and 4) are left to prost.
    #[inline]
    fn skip(&mut self, wire: u64) -> Option<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                let (_, rest) = self.buf.split_first_chunk::<4>()?;
                self.buf = rest;
                Some(())
            }
            _ => None,
        }
    }
}

/// Decodes a `Label` into borrowed strings (last occurrence of a field wins, as in prost).
#[inline]
fn fast_label(b: &[u8]) -> Option<(&str, &str)> {
    let mut r = Reader { buf: b };
    let (mut name, mut value) = ("", "");
    while !r.buf.is_empty() {
        match r.key()? {
            (1, LEN) => name = std::str::from_utf8(r.bytes()?).ok()?,
            (2, LEN) => value = std::str::from_utf8(r.bytes()?).ok()?,
            (1 | 2, _) => return None,
            (_, w) => r.skip(w)?,
        }
    }
    Some((name, value))
}

/// Decodes a `Sample` as `(value, timestamp)`.
#[inline]
fn fast_sample(b: &[u8]) -> Option<(f64, i64)> {
    let mut r = Reader { buf: b };
    let (mut value, mut t) = (0.0, 0i64);
    while !r.buf.is_empty() {
        match r.key()? {
            (1, FIXED64) => value = f64::from_bits(r.fixed64()?),
            // int64 on the wire: the varint's 64 bits reinterpreted.
            (2, VARINT) => t = r.varint()? as i64,
            (1 | 2, _) => return None,
            (_, w) => r.skip(w)?,
        }
    }
    Some((value, t))
}

/// The allocation-light decoder; `None` when the slow path must decide (any error included).
fn decode_fast(buf: &[u8], limits: &Limits) -> Option<Decoded> {
    let mut out = Decoded::default();
    let mut series = SeriesBuilder::new(limits);
    let mut labels: Vec<(&str, &str)> = Vec::new();
    let mut samples: Vec<(f64, i64)> = Vec::new();
    let mut r = Reader { buf };
    while !r.buf.is_empty() {
        let ts = match r.key()? {
            (1, LEN) => r.bytes()?,
            (3, LEN) => {
                r.bytes()?;
                out.ignored.metadata += 1;
                continue;
            }
            (1 | 3, _) => return None,
            (_, w) => {
                r.skip(w)?;
                continue;
            }
        };
        labels.clear();
        samples.clear();
        let mut t = Reader { buf: ts };
        while !t.buf.is_empty() {
            match t.key()? {
                (1, LEN) => labels.push(fast_label(t.bytes()?)?),
                (2, LEN) => samples.push(fast_sample(t.bytes()?)?),
                // Rare and only counted: prost checks them exactly as the slow path would.
                (3, LEN) => {
                    Exemplar::decode(t.bytes()?).ok()?;
                    out.ignored.exemplars += 1;
                }
                (4, LEN) => {
                    Histogram::decode(t.bytes()?).ok()?;
                    out.ignored.histograms += 1;
                }
                (1..=4, _) => return None,
                (_, w) => t.skip(w)?,
            }
        }
        if samples.is_empty() {
            continue;
        }
        if samples.len() > limits.max_samples.saturating_sub(out.samples.len()) {
            return None;
        }
        let built = series.build(labels.iter().copied()).ok()?;
        out.samples.reserve(samples.len());
        let (last, rest) = samples.split_last()?;
        for &(v, t) in rest {
            out.samples.push((built.clone(), t, SampleValue::Float(v)));
        }
        out.samples
            .push((built, last.1, SampleValue::Float(last.0)));
    }
    Some(out)
}

/// Groups samples into a `WriteRequest`, one `TimeSeries` per run of equal label sets.
///
/// For tests, benches and fuzzing; string samples have no remote write form and are skipped.
pub fn write_request_from_samples(samples: &[DecodedSample]) -> WriteRequest {
    let mut req = WriteRequest::default();
    let mut last: Option<&crate::model::Labels> = None;
    for (labels, t, v) in samples {
        let SampleValue::Float(v) = v else { continue };
        let sample = Sample {
            value: *v,
            timestamp: *t,
        };
        match req.timeseries.last_mut() {
            Some(ts) if last == Some(labels) => ts.samples.push(sample),
            _ => {
                req.timeseries.push(TimeSeries {
                    labels: labels
                        .iter()
                        .map(|l| Label {
                            name: l.name.to_string(),
                            value: l.value.to_string(),
                        })
                        .collect(),
                    samples: vec![sample],
                    ..TimeSeries::default()
                });
                last = Some(labels);
            }
        }
    }
    req
}

/// Protobuf-encodes and snappy-compresses a request, as a remote write sender does.
pub fn encode_remote_write(req: &WriteRequest) -> Result<Vec<u8>, IngestError> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .map_err(|e| {
            IngestError::whole(
                IngestErrorKind::TooLarge,
                format!("cannot snappy-compress: {e}"),
            )
        })
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// The fast path, when it answers, agrees with the prost path; checked on the fuzz corpus
    /// (decompressed and as raw protobuf) and on every truncation of a valid request.
    #[test]
    fn fast_path_agrees_with_prost() {
        let limits = Limits::default();
        let check = |pb: &[u8]| {
            if let Some(fast) = decode_fast(pb, &limits) {
                let slow = decode_slow(pb.to_vec(), &limits).expect("fast path accepted it");
                assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
            }
        };
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/remote_write");
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let data = std::fs::read(entry.path()).unwrap();
            check(&data);
            if let Ok(pb) = snap::raw::Decoder::new().decompress_vec(&data) {
                check(&pb);
            }
        }
        let mut ts = TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "up".into(),
                },
                Label {
                    name: "job".into(),
                    value: "é".into(),
                },
            ],
            samples: vec![
                Sample {
                    value: f64::from_bits(0x7ff0_0000_0000_0002),
                    timestamp: -5,
                },
                Sample {
                    value: 2.0,
                    timestamp: i64::MAX,
                },
            ],
            ..TimeSeries::default()
        };
        ts.exemplars.push(Exemplar {
            labels: vec![],
            value: 1.0,
            timestamp: 3,
        });
        let req = WriteRequest {
            timeseries: vec![ts.clone(), ts],
            metadata: vec![MetricMetadata::default()],
        };
        let pb = req.encode_to_vec();
        assert!(decode_fast(&pb, &limits).is_some());
        for n in 0..=pb.len() {
            check(&pb[..n]);
            let mut m = pb.clone();
            if n < m.len() {
                m[n] ^= 0x80;
                check(&m);
                m[n] = 0xff;
                check(&m);
            }
        }
    }
}
