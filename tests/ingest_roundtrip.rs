//! Round trips through the ingest encoders and decoders: proptest-generated samples through
//! Prometheus text and remote write, and the fuzz corpora replayed through the fuzz properties.

#[path = "ingest/fuzz_props.rs"]
mod fuzz_props;

use fuzz_props::{key, prom_text_property, remote_write_property, zero_sign_free};
use klaxon::ingest::{
    DecodedSample, Limits, decode_remote_write, encode_prom_text, encode_remote_write,
    parse_prom_text, write_request_from_samples,
};
use klaxon::model::{Labels, SampleValue, stale_nan};
use proptest::prelude::*;

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_]{0,12}",
        "[a-z][a-z.é/ -]{0,8}",
        Just("job".to_string()),
    ]
}

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", "[a-z][a-z0-9.\\-ü ]{0,12}",]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_]{0,10}",
        "\\PC{0,10}",
        "[\\\\\"\n\t{},= #]{1,6}",
    ]
}

fn float(text: bool) -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_map(move |f| if text && f.is_nan() { f64::NAN } else { f }),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(if text { f64::NAN } else { stale_nan() }),
    ]
}

fn samples(text: bool) -> impl Strategy<Value = Vec<DecodedSample>> {
    let sample = (
        metric_name(),
        prop::collection::vec((label_name(), label_value()), 0..5),
        any::<i64>(),
        float(text),
    )
        .prop_map(|(name, labels, t, v)| {
            let labels =
                Labels::from_pairs(std::iter::once(("__name__".to_string(), name)).chain(labels));
            (labels, t, SampleValue::Float(v))
        });
    prop::collection::vec(sample, 0..20)
}

proptest! {
    #[test]
    fn text_round_trip(s in samples(true)) {
        let mut text = String::new();
        encode_prom_text(&s, &mut text);
        let back = parse_prom_text(text.as_bytes(), 0, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(key(&back), key(&s));
    }

    #[test]
    fn remote_write_round_trip(s in samples(false)) {
        let body = encode_remote_write(&write_request_from_samples(&s)).unwrap();
        let back = decode_remote_write(&body, &Limits::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Everything but the sign of zero, which the protobuf encoder drops, survives bit-exactly.
        prop_assert_eq!(zero_sign_free(key(&back)), zero_sign_free(key(&s)));
    }

    #[test]
    fn text_never_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
        prom_text_property(&data);
    }

    #[test]
    fn text_never_panics_texty(data in "[a-z{}=\",# \n\\\\.0-9+-]{0,80}") {
        prom_text_property(data.as_bytes());
    }

    #[test]
    fn remote_write_never_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
        remote_write_property(&data);
    }
}

fn replay(dir: &str, property: fn(&[u8])) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    let entries = std::fs::read_dir(&path).unwrap_or_else(|e| {
        panic!(
            "{dir}: {e}; the seeds must be committed (the directory is un-ignored in .gitignore)"
        )
    });
    for entry in entries {
        let p = entry.expect("readable corpus entry").path();
        let data = std::fs::read(&p).expect("readable corpus file");
        property(&data);
        n += 1;
    }
    assert!(n >= 5, "{dir} has only {n} seeds");
}

#[test]
fn replay_prom_text_corpus() {
    replay("fuzz/corpus/prom_text", prom_text_property);
}

#[test]
fn replay_remote_write_corpus() {
    replay("fuzz/corpus/remote_write", remote_write_property);
}

/// Rough parse throughput on a realistic scrape; run with
/// `cargo test --release --test ingest_roundtrip -- --ignored --nocapture text_throughput`.
#[test]
#[ignore = "timing, not a check"]
fn text_throughput() {
    let mut body =
        String::from("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    let mut i = 0u64;
    while body.len() < 32 << 20 {
        body.push_str(&format!(
            "http_requests_total{{method=\"GET\",code=\"{}\",handler=\"/api/v1/query\",instance=\"host-{}:9090\",job=\"prometheus\"}} {} 1700000000000\n",
            200 + i % 5,
            i % 50,
            i * 7
        ));
        i += 1;
    }
    let limits = Limits {
        max_samples: usize::MAX,
        ..Limits::default()
    };
    let start = std::time::Instant::now();
    let n = parse_prom_text(body.as_bytes(), 0, &limits)
        .expect("parses")
        .len();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} samples, {:.1} MB in {secs:.3}s: {:.0} MB/s, {:.1} M samples/s",
        body.len() as f64 / 1e6,
        body.len() as f64 / 1e6 / secs,
        n as f64 / 1e6 / secs
    );
}
