#![allow(dead_code)] // Each includer uses only some of these.
// Properties shared by the fuzz targets (`fuzz/fuzz_targets/{prom_text,remote_write}.rs`) and the
// stable corpus replay test (`tests/ingest_roundtrip.rs`), included in both with `#[path]`.

use klaxon::ingest::{
    DecodedSample, Limits, decode_remote_write, encode_prom_text, encode_remote_write,
    parse_json_push, parse_openmetrics, parse_prom_text, pushgateway_labels,
    write_request_from_samples,
};
use klaxon::model::SampleValue;

/// Samples as comparable keys: floats by bit pattern.
pub fn key(samples: &[DecodedSample]) -> Vec<(String, i64, Result<u64, String>)> {
    samples
        .iter()
        .map(|(l, t, v)| {
            let v = match v {
                SampleValue::Float(f) => Ok(f.to_bits()),
                SampleValue::Str(s) => Err(s.to_string()),
            };
            (format!("{l:?}"), *t, v)
        })
        .collect()
}

/// Keys with -0.0 read as +0.0: protobuf encoders (prost included) drop zero-valued doubles.
pub fn zero_sign_free(
    mut k: Vec<(String, i64, Result<u64, String>)>,
) -> Vec<(String, i64, Result<u64, String>)> {
    for e in &mut k {
        if e.2 == Ok((-0.0f64).to_bits()) {
            e.2 = Ok(0);
        }
    }
    k
}

/// Any bytes: the text parsers never panic, and whatever 0.0.4 text parses re-encodes to
/// text that parses back to the same samples.
pub fn prom_text_property(data: &[u8]) {
    let limits = Limits::default();
    let _ = parse_openmetrics(data, 0, &limits);
    let _ = parse_json_push(data, 0, &limits);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = pushgateway_labels(s);
    }
    if let Ok(samples) = parse_prom_text(data, 0, &limits) {
        let mut text = String::new();
        encode_prom_text(&samples, &mut text);
        let again = match parse_prom_text(text.as_bytes(), 0, &limits) {
            Ok(a) => a,
            Err(e) => panic!("{data:?} encoded as {text:?} does not parse: {e}"),
        };
        assert_eq!(key(&again), key(&samples), "{data:?} encoded as {text:?}");
    }
}

/// Any bytes: the remote write decoder never panics, and whatever it accepts re-encodes to a
/// request that decodes to the same samples (stale markers included, bit for bit).
pub fn remote_write_property(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(samples) = decode_remote_write(data, &limits) {
        let body = match encode_remote_write(&write_request_from_samples(&samples)) {
            Ok(b) => b,
            Err(e) => panic!("re-encoding failed: {e}"),
        };
        let again = match decode_remote_write(&body, &limits) {
            Ok(a) => a,
            Err(e) => panic!("re-encoded request does not decode: {e}"),
        };
        // prost omits a 0.0 value as the proto3 default, so -0.0 comes back as +0.0.
        assert_eq!(zero_sign_free(key(&again)), zero_sign_free(key(&samples)));
    }
}
