//! Snapshot tests of the error messages pushers see for bad requests, one per class of mistake.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test --test ingest_errors`, then read the diffs.

use std::io::Write as _;

use klaxon::ingest::{
    IngestError, Limits, decode_body_encoding, decode_remote_write, encode_remote_write,
    parse_json_push, parse_openmetrics, parse_prom_text, prompb, pushgateway_labels,
};

/// Kind, HTTP status and message, as the server will report them.
fn render(r: Result<impl std::fmt::Debug, IngestError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => format!("{:?} ({}): {e}", e.kind, e.http_status()),
    }
}

fn text(body: &str) -> String {
    render(parse_prom_text(body.as_bytes(), 0, &Limits::default()))
}

fn json(body: &str) -> String {
    render(parse_json_push(body.as_bytes(), 0, &Limits::default()))
}

fn series(labels: &[(&str, &str)]) -> prompb::TimeSeries {
    prompb::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| prompb::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: vec![prompb::Sample {
            value: 1.0,
            timestamp: 1,
        }],
        ..Default::default()
    }
}

fn rw(ts: Vec<prompb::TimeSeries>) -> Vec<u8> {
    encode_remote_write(&prompb::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
    .expect("encodes")
}

#[test]
fn text_errors() {
    insta::assert_snapshot!("text_missing_value", text("# TYPE up gauge\nup 1\nup\n"));
    insta::assert_snapshot!("text_bad_value", text("up{job=\"a\"} one\n"));
    insta::assert_snapshot!("text_bad_timestamp", text("up 1 1.5e3\n"));
    insta::assert_snapshot!(
        "text_duplicate_label",
        text("up{a=\"1\",b=\"2\",a=\"3\"} 1\n")
    );
    insta::assert_snapshot!("text_unterminated", text("up 1\n\nup{a=\"x} 1\n"));
    insta::assert_snapshot!("text_missing_comma", text("up{a=\"1\" b=\"2\"} 1\n"));
    insta::assert_snapshot!("text_unknown_type", text("# TYPE up countr\n"));
    insta::assert_snapshot!("text_reserved_label", text("up{__meta_x=\"1\"} 1\n"));
    insta::assert_snapshot!(
        "om_missing_eof",
        render(parse_openmetrics(b"up 1 1.5\n", 0, &Limits::default()))
    );
    let lim = Limits {
        max_label_value_len: 16,
        ..Limits::default()
    };
    insta::assert_snapshot!(
        "text_value_too_long",
        render(parse_prom_text(
            b"up{path=\"/a/very/long/path/indeed\"} 1\n",
            0,
            &lim
        ))
    );
}

#[test]
fn remote_write_errors() {
    let good = rw(vec![series(&[("__name__", "up")]); 10]);
    insta::assert_snapshot!(
        "rw_truncated_snappy",
        render(decode_remote_write(
            &good[..good.len() - 4],
            &Limits::default()
        ))
    );
    let bad = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\x10\x0a\x02")
        .expect("compresses");
    insta::assert_snapshot!(
        "rw_bad_protobuf",
        render(decode_remote_write(&bad, &Limits::default()))
    );
    insta::assert_snapshot!(
        "rw_empty_label_name",
        render(decode_remote_write(
            &rw(vec![
                series(&[("__name__", "up")]),
                series(&[("__name__", "up")]),
                series(&[("__name__", "up"), ("", "x")]),
            ]),
            &Limits::default()
        ))
    );
    insta::assert_snapshot!(
        "rw_missing_name",
        render(decode_remote_write(
            &rw(vec![series(&[("job", "x")])]),
            &Limits::default()
        ))
    );
    let lim = Limits {
        max_samples: 3,
        ..Limits::default()
    };
    insta::assert_snapshot!(
        "rw_too_many_samples",
        render(decode_remote_write(&good, &lim))
    );
}

#[test]
fn json_errors() {
    insta::assert_snapshot!(
        "json_wrong_value_type",
        json(r#"{"samples":[{"metric":"a","value":1},{"metric":"b","value":[1]}]}"#)
    );
    insta::assert_snapshot!(
        "json_unknown_field",
        json(r#"{"samples":[{"metric":"a","value":1,"lables":{}}]}"#)
    );
    insta::assert_snapshot!(
        "json_label_not_string",
        json(r#"{"samples":[{"metric":"a","value":1,"labels":{"db":5}}]}"#)
    );
    insta::assert_snapshot!(
        "json_syntax",
        json("{\"samples\": [\n  {\"metric\": \"a\" \"value\": 1}\n]}")
    );
}

#[test]
fn encoding_and_path_errors() {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b'#'; 4 << 20]).expect("writes");
    let bomb = e.finish().expect("finishes");
    let lim = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    insta::assert_snapshot!(
        "gzip_bomb",
        render(decode_body_encoding(&bomb, Some("gzip"), &lim))
    );
    insta::assert_snapshot!(
        "gzip_corrupt",
        render(decode_body_encoding(
            b"\x1f\x8b\x08\x00garbage",
            Some("gzip"),
            &Limits::default()
        ))
    );
    insta::assert_snapshot!(
        "encoding_unsupported",
        render(decode_body_encoding(b"x", Some("br"), &Limits::default()))
    );
    insta::assert_snapshot!(
        "pushgateway_odd_path",
        render(pushgateway_labels("myjob/instance/host1/env"))
    );
    insta::assert_snapshot!(
        "pushgateway_bad_base64",
        render(pushgateway_labels("myjob/env@base64/not*base64"))
    );
}
