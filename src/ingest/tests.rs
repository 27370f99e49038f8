//! Unit tests for every decoder: good inputs and each class of bad input.

use super::*;
use crate::model::{Labels, STALE_NAN_BITS, SampleValue, stale_nan};

fn l() -> Limits {
    Limits::default()
}

fn text(s: &str) -> Result<Vec<DecodedSample>, IngestError> {
    parse_prom_text(s.as_bytes(), 42, &l())
}

fn text_err(s: &str) -> String {
    match text(s) {
        Ok(v) => panic!("expected an error for {s:?}, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn f(v: &SampleValue) -> f64 {
    match v {
        SampleValue::Float(f) => *f,
        SampleValue::Str(s) => panic!("string sample {s}"),
    }
}

fn lbl(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn text_basic() {
    let body = "# HELP http_requests_total Total requests.\\nSecond line\n\
                # TYPE http_requests_total counter\n\
                \n\
                # a free comment\n\
                http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                http_requests_total{method=\"post\",code=\"400\",} 3 1395066363000\r\n\
                  metric_without_timestamp_and_labels 12.47   \n\
                something_weird{problem=\"division by zero\"} +Inf -3982045\n\
                neg -Inf\n\
                nan NaN\n\
                exp 1.5e-3\n\
                esc{path=\"C:\\\\DIR\\\\\",q=\"a \\\"b\\\"\",nl=\"x\\ny\"} 1\n\
                empty{a=\"\",b=\"x\"} 2\n";
    let d = parse_text(body.as_bytes(), Format::PromText, 42, &l()).unwrap();
    let s = &d.samples;
    assert_eq!(s.len(), 9);
    assert_eq!(
        s[0].0,
        lbl(&[
            ("__name__", "http_requests_total"),
            ("method", "post"),
            ("code", "200")
        ])
    );
    assert_eq!((s[0].1, f(&s[0].2)), (1395066363000, 1027.0));
    assert_eq!(s[1].0.get("code"), Some("400"));
    assert_eq!((s[2].1, f(&s[2].2)), (42, 12.47));
    assert_eq!((s[3].1, f(&s[3].2)), (-3982045, f64::INFINITY));
    assert_eq!(f(&s[4].2), f64::NEG_INFINITY);
    assert!(f(&s[5].2).is_nan());
    assert_eq!(f(&s[6].2), 1.5e-3);
    assert_eq!(s[7].0.get("path"), Some("C:\\DIR\\"));
    assert_eq!(s[7].0.get("q"), Some("a \"b\""));
    assert_eq!(s[7].0.get("nl"), Some("x\ny"));
    assert_eq!(s[8].0, lbl(&[("__name__", "empty"), ("b", "x")]));
    assert_eq!(
        d.metadata,
        vec![FamilyMetadata {
            name: "http_requests_total".into(),
            kind: MetricType::Counter,
            help: Some("Total requests.\nSecond line".into()),
        }]
    );
}

#[test]
fn text_utf8_names_and_exemplars() {
    let body = "# TYPE \"my.metric\" gauge\n\
                {\"my.metric\",\"a.b\"=\"x\",job=\"j\"} 1\n\
                {\"my.metric\"} 2\n\
                { \"my.metric\" , \"a.b\" = \"y\" } 3\n\
                legacy{\"ü\"=\"v\"} 4 5 # {trace_id=\"abc\"} 1.0 6\n\
                {__name__=\"via_label\"} 5\n";
    let d = parse_text(body.as_bytes(), Format::PromText, 0, &l()).unwrap();
    let s = &d.samples;
    assert_eq!(
        s[0].0,
        lbl(&[("__name__", "my.metric"), ("a.b", "x"), ("job", "j")])
    );
    assert_eq!(s[1].0, lbl(&[("__name__", "my.metric")]));
    assert_eq!(s[2].0.get("a.b"), Some("y"));
    assert_eq!(s[3].0.get("ü"), Some("v"));
    assert_eq!(s[3].1, 5);
    assert_eq!(s[4].0.metric_name(), Some("via_label"));
    assert_eq!(d.ignored.exemplars, 1);
    assert_eq!(d.metadata[0].kind, MetricType::Gauge);
}

#[test]
fn text_errors_name_the_line() {
    let cases: &[(&str, &str)] = &[
        (
            "up 1\nup\n",
            "line 2: unexpected end of line, expected a value",
        ),
        (
            "up 1\n\nup \n",
            "line 3: unexpected end of line, expected a value",
        ),
        (
            "up{a=\"1\"}\n",
            "line 1: unexpected end of line, expected a value",
        ),
        (
            "up abc\n",
            "line 1: invalid value \"abc\", expected a number, NaN, +Inf or -Inf",
        ),
        (
            "up 1 1.5\n",
            "line 1: invalid timestamp \"1.5\", expected integer milliseconds",
        ),
        (
            "up 1 2 3\n",
            "line 1: expected end of line or an exemplar (\" # {...} value\"), found '3'",
        ),
        (
            "up{a=\"1\",a=\"2\"} 1\n",
            "line 1: duplicate label name \"a\"",
        ),
        (
            "up{a=\"1} 1\n",
            "line 1: unterminated quoted label value, expected a closing '\"'",
        ),
        ("up{a=1} 1\n", "line 1: expected label value, found '1'"),
        (
            "up{a} 1\n",
            "line 1: expected '=' after label name \"a\", found '}'",
        ),
        (
            "up{a=\"1\" b=\"2\"} 1\n",
            "line 1: expected ',' or '}', found 'b'",
        ),
        (
            "up{1=\"x\"} 1\n",
            "line 1: expected a label name or '}', found '1'",
        ),
        (
            "up{a=\"x\"\n",
            "line 1: unexpected end of line, expected ',' or '}'",
        ),
        (
            "{a=\"x\"} 1\n",
            "line 1: missing metric name, expected a name before '{' or a quoted name inside",
        ),
        (
            "1up 1\n",
            "line 1: expected a metric name or '{', found '1'",
        ),
        (
            "# TYPE up countr\n",
            "line 1: unknown metric type \"countr\", expected counter, gauge, histogram, summary or untyped",
        ),
        (
            "# TYPE up counter\n# TYPE up gauge\n",
            "line 2: second # TYPE line for metric \"up\"",
        ),
        (
            "# TYPE\n",
            "line 1: unexpected end of line, expected a space and a metric name after # TYPE",
        ),
        (
            "up{__x=\"1\"} 1\n",
            "line 1: label name \"__x\" is reserved (names starting with \"__\")",
        ),
        ("up{\"\"=\"1\"} 1\n", "line 1: empty label name"),
        (
            "up{__name__=\"x\"} 1\n",
            "line 1: duplicate label name \"__name__\"",
        ),
        (
            "up{\"a\",\"b\"} 1\n",
            "line 1: expected '=' after label name \"a\", found ','",
        ),
        (
            "{\"a\",\"b\"} 1\n",
            "line 1: expected '=' after label name \"b\", found '}'",
        ),
        (
            "up 1 # nope\n",
            "line 1: expected '{' starting an exemplar, found 'n'",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(&text_err(body), want, "body {body:?}");
    }
    let e = parse_prom_text(b"up 1\nup{a=\"\xff\"} 1\n", 0, &l()).unwrap_err();
    assert_eq!(e.to_string(), "line 2: invalid UTF-8");
    assert_eq!(e.location, Location::Line(2));
    assert_eq!(e.kind, IngestErrorKind::Syntax);
}

#[test]
fn text_limits() {
    let lim = Limits {
        max_samples: 2,
        max_labels_per_series: 3,
        max_label_name_len: 5,
        max_label_value_len: 8,
        max_decompressed_bytes: 200,
        ..Limits::default()
    };
    let e = parse_prom_text(b"a 1\nb 2\nc 3\n", 0, &lim).unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::TooLarge);
    assert_eq!(e.to_string(), "line 3: more than 2 samples in one request");
    let e = parse_prom_text(b"a{b=\"1\",c=\"2\",d=\"3\"} 1\n", 0, &lim).unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::Limit);
    assert_eq!(e.to_string(), "line 1: series has more than 3 labels");
    let e = parse_prom_text(b"a{bbbbbb=\"1\"} 1\n", 0, &lim).unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::Limit);
    let e = parse_prom_text(b"a{b=\"123456789\"} 1\n", 0, &lim).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: value of label \"b\" is 9 bytes long, more than the limit of 8"
    );
    let e = parse_prom_text(b"abcdefghi 1\n", 0, &lim).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: metric name is 9 bytes long, more than the limit of 8"
    );
    let e = parse_prom_text(&[b'#'; 201], 0, &lim).unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::TooLarge);
    assert_eq!(e.location, Location::None);
}

#[test]
fn openmetrics() {
    let body = "# TYPE foo counter\n\
                # UNIT foo seconds\n\
                # HELP foo Foo.\n\
                foo_total 17.0 1520879607.789 # {id=\"a\"} 1 1520879607.7\n\
                foo_created 1520430000.123\n\
                # TYPE g gauge\n\
                g_created 5\n\
                # EOF\n";
    let d = parse_text(body.as_bytes(), Format::OpenMetrics, 0, &l()).unwrap();
    assert_eq!(d.samples.len(), 2);
    assert_eq!(d.samples[0].1, 1520879607789);
    assert_eq!(d.samples[1].0.metric_name(), Some("g_created"));
    assert_eq!(d.ignored.created, 1);
    assert_eq!(d.ignored.exemplars, 1);

    let e = parse_openmetrics(b"a 1\n", 0, &l()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: unexpected end of input, expected \"# EOF\" to end the OpenMetrics body"
    );
    let e = parse_openmetrics(b"a 1\n# EOF\nb 2\n", 0, &l()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 3: unexpected content after \"# EOF\" on line 2"
    );
    let e = parse_openmetrics(b"# TYPE a untyped\n# EOF\n", 0, &l()).unwrap_err();
    assert_eq!(e.location, Location::Line(1));
    assert!(parse_openmetrics(b"# TYPE a stateset\n# EOF", 0, &l()).is_ok());
    // In 0.0.4, `# EOF` is an ordinary comment.
    assert_eq!(text("# EOF\nup 1\n").unwrap().len(), 1);
    assert_eq!(
        Format::from_content_type(Some("application/openmetrics-text; version=1.0.0")),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type(Some("text/plain; version=0.0.4")),
        Format::PromText
    );
    assert_eq!(Format::from_content_type(None), Format::PromText);
}

#[test]
fn text_round_trip_by_encoder() {
    let samples = vec![
        (
            lbl(&[("__name__", "my.metric"), ("a.b", "q\"\\\n"), ("job", "x")]),
            -5,
            SampleValue::Float(-0.0),
        ),
        (
            lbl(&[("__name__", "up")]),
            i64::MAX,
            SampleValue::Float(1e300),
        ),
        (
            lbl(&[("__name__", "up"), ("ü", "1")]),
            i64::MIN,
            SampleValue::Float(f64::MIN_POSITIVE),
        ),
    ];
    let mut out = String::new();
    encode_prom_text(&samples, &mut out);
    let back = parse_prom_text(out.as_bytes(), 0, &l()).unwrap();
    assert_eq!(back.len(), samples.len());
    for (a, b) in samples.iter().zip(&back) {
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert_eq!(f(&a.2).to_bits(), f(&b.2).to_bits());
    }
}

fn rw(req: &prompb::WriteRequest) -> Vec<u8> {
    encode_remote_write(req).unwrap()
}

fn ts(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> prompb::TimeSeries {
    prompb::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| prompb::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(value, timestamp)| prompb::Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn remote_write_good() {
    let mut hist = ts(&[("__name__", "h")], &[]);
    hist.histograms.push(prompb::Histogram {
        count_int: 3,
        sum: 1.0,
        timestamp: 5,
    });
    let mut a = ts(
        &[("job", "j"), ("__name__", "up"), ("e", "")],
        &[(1.0, 10), (stale_nan(), 20)],
    );
    a.exemplars.push(prompb::Exemplar {
        labels: vec![],
        value: 1.0,
        timestamp: 10,
    });
    let req = prompb::WriteRequest {
        timeseries: vec![a, hist],
        metadata: vec![prompb::MetricMetadata {
            r#type: 1,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: String::new(),
        }],
    };
    let d = decode_remote_write_full(&rw(&req), &l()).unwrap();
    assert_eq!(d.samples.len(), 2);
    assert_eq!(d.samples[0].0, lbl(&[("__name__", "up"), ("job", "j")]));
    assert_eq!(f(&d.samples[1].2).to_bits(), STALE_NAN_BITS);
    assert!(d.samples[1].2.is_stale());
    assert_eq!(d.samples[1].1, 20);
    assert_eq!(
        d.ignored,
        Ignored {
            histograms: 1,
            exemplars: 1,
            metadata: 1,
            created: 0
        }
    );
    // Empty request is fine.
    assert!(
        decode_remote_write(&rw(&prompb::WriteRequest::default()), &l())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn remote_write_errors() {
    let good = rw(&prompb::WriteRequest {
        timeseries: vec![ts(&[("__name__", "up")], &[(1.0, 1)]); 20],
        metadata: vec![],
    });
    // Truncated snappy.
    let e = decode_remote_write(&good[..good.len() / 2], &l()).unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::Decompress);
    assert!(e.to_string().starts_with("invalid snappy block"), "{e}");
    // Not snappy at all.
    assert_eq!(
        decode_remote_write(b"\xff\xff\xff\xff\xff\xff", &l())
            .unwrap_err()
            .kind,
        IngestErrorKind::Decompress
    );
    // Valid snappy, bad protobuf.
    let bad = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\x01abc")
        .unwrap();
    let e = decode_remote_write(&bad, &l()).unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::Syntax);
    assert!(
        e.to_string().starts_with("invalid protobuf WriteRequest"),
        "{e}"
    );
    // Bad protobuf inside the third series.
    let mut pb = prost::Message::encode_to_vec(&prompb::WriteRequest {
        timeseries: vec![ts(&[("__name__", "up")], &[(1.0, 1)]); 2],
        metadata: vec![],
    });
    pb.extend_from_slice(b"\x0a\x03\x0a\x05a");
    let bad = snap::raw::Encoder::new().compress_vec(&pb).unwrap();
    let e = decode_remote_write(&bad, &l()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("timeseries[2]: invalid protobuf TimeSeries"),
        "{e}"
    );
    // Label problems point at the series and label.
    let cases: Vec<(prompb::TimeSeries, &str)> = vec![
        (
            ts(&[("job", "x")], &[(1.0, 1)]),
            "timeseries[1]: missing metric name",
        ),
        (
            ts(&[("__name__", "up"), ("", "x")], &[(1.0, 1)]),
            "timeseries[1].labels[1]: empty label name",
        ),
        (
            ts(&[("__name__", "up"), ("a", "1"), ("a", "2")], &[(1.0, 1)]),
            "timeseries[1]: duplicate label name \"a\"",
        ),
        (
            ts(&[("__name__", "up"), ("__meta", "1")], &[(1.0, 1)]),
            "timeseries[1].labels[1]: label name \"__meta\" is reserved (names starting with \"__\")",
        ),
    ];
    for (bad, want) in cases {
        let req = prompb::WriteRequest {
            timeseries: vec![ts(&[("__name__", "ok")], &[(1.0, 1)]), bad],
            metadata: vec![],
        };
        assert_eq!(
            decode_remote_write(&rw(&req), &l())
                .unwrap_err()
                .to_string(),
            want
        );
    }
}

#[test]
fn remote_write_limits() {
    let req = prompb::WriteRequest {
        timeseries: vec![ts(&[("__name__", "up")], &[(1.0, 1), (2.0, 2)]); 3],
        metadata: vec![],
    };
    let body = rw(&req);
    let lim = Limits {
        max_samples: 5,
        ..Limits::default()
    };
    let e = decode_remote_write(&body, &lim).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[2]: more than 5 samples in one request"
    );
    assert_eq!(e.kind, IngestErrorKind::TooLarge);
    // decompress_len is checked before decompressing.
    let big = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 100_000])
        .unwrap();
    let lim = Limits {
        max_decompressed_bytes: 50_000,
        ..Limits::default()
    };
    let e = decode_remote_write(&big, &lim).unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::TooLarge);
    // A header claiming a huge length is refused without allocating.
    let e = decode_remote_write(b"\xff\xff\xff\xff\x0f\x00", &l()).unwrap_err();
    assert!(matches!(
        e.kind,
        IngestErrorKind::TooLarge | IngestErrorKind::Decompress
    ));
    let lim = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        decode_remote_write(&body, &lim).unwrap_err().kind,
        IngestErrorKind::TooLarge
    );
}

#[test]
fn remote_write_content_type() {
    assert!(check_remote_write_content_type(None).is_ok());
    assert!(check_remote_write_content_type(Some("application/x-protobuf")).is_ok());
    assert!(
        check_remote_write_content_type(Some(
            "application/x-protobuf;proto=prometheus.WriteRequest"
        ))
        .is_ok()
    );
    let e = check_remote_write_content_type(Some(
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    ))
    .unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::Unsupported);
    assert_eq!(e.http_status(), 415);
    assert!(check_remote_write_content_type(Some("application/json")).is_err());
}

fn json(s: &str) -> Result<Vec<DecodedSample>, IngestError> {
    parse_json_push(s.as_bytes(), 7, &l())
}

#[test]
fn json_good() {
    let s = json(
        r#"{"samples":[
            {"metric":"database_health","labels":{"db":"main","x":""},"value":"unhealthy"},
            {"metric":"q","value":1.5,"timestamp":1700000000000},
            {"metric":"my.metric","labels":{"a.b":"c"},"value":"NaN","timestamp":null}
        ]}"#,
    )
    .unwrap();
    assert_eq!(
        s[0].0,
        lbl(&[("__name__", "database_health"), ("db", "main")])
    );
    assert_eq!(s[0].1, 7);
    assert_eq!(s[0].2, SampleValue::Str("unhealthy".into()));
    assert_eq!((s[1].1, f(&s[1].2)), (1700000000000, 1.5));
    assert_eq!(s[2].2, SampleValue::Str("NaN".into()));
    assert!(json(r#"{"samples":[]}"#).unwrap().is_empty());
}

#[test]
fn json_errors() {
    let cases: &[(&str, &str)] = &[
        (r#"[]"#, "expected a JSON object {\"samples\": [...]}"),
        (r#"{}"#, "missing field \"samples\""),
        (r#"{"samples":{}}"#, "samples: expected an array"),
        (
            r#"{"samples":[],"x":1}"#,
            "x: unknown field, expected \"samples\"",
        ),
        (r#"{"samples":[1]}"#, "samples[0]: expected an object"),
        (
            r#"{"samples":[{"metric":"a","value":1},{"metric":"a","value":true}]}"#,
            "samples[1].value: expected a number or a string",
        ),
        (
            r#"{"samples":[{"value":1}]}"#,
            "samples[0]: missing field \"metric\"",
        ),
        (
            r#"{"samples":[{"metric":"","value":1}]}"#,
            "samples[0].metric: empty metric name",
        ),
        (
            r#"{"samples":[{"metric":3,"value":1}]}"#,
            "samples[0].metric: expected a string",
        ),
        (
            r#"{"samples":[{"metric":"a"}]}"#,
            "samples[0]: missing field \"value\"",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"ts":1}]}"#,
            "samples[0].ts: unknown field, expected metric, labels, value or timestamp",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"timestamp":1.5}]}"#,
            "samples[0].timestamp: expected integer milliseconds since the epoch",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"labels":{"job":1}}]}"#,
            "samples[0].labels.job: expected a string",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"labels":{"a.b":1}}]}"#,
            "samples[0].labels[\"a.b\"]: expected a string",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"labels":[]}]}"#,
            "samples[0].labels: expected an object of label names to string values",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"labels":{"__name__":"b"}}]}"#,
            "samples[0].labels.__name__: use the \"metric\" field for the metric name",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"labels":{"__x":"b"}}]}"#,
            "samples[0].labels.__x: label name \"__x\" is reserved (names starting with \"__\")",
        ),
        (
            r#"{"samples":[{"metric":"a","value":1,"labels":{"":"b"}}]}"#,
            "samples[0].labels[\"\"]: empty label name",
        ),
        (
            "{\"samples\":[\n{\"metric\":\"a\",}]}",
            "line 2: invalid JSON at column 15: trailing comma",
        ),
    ];
    for (body, want) in cases {
        match json(body) {
            Ok(v) => panic!("{body}: expected an error, got {v:?}"),
            Err(e) => assert_eq!(&e.to_string(), want, "{body}"),
        }
    }
    let lim = Limits {
        max_samples: 1,
        ..Limits::default()
    };
    let e = parse_json_push(
        br#"{"samples":[{"metric":"a","value":1},{"metric":"a","value":1}]}"#,
        0,
        &lim,
    )
    .unwrap_err();
    assert_eq!(e.kind, IngestErrorKind::TooLarge);
    let lim = Limits {
        max_label_value_len: 3,
        ..Limits::default()
    };
    let e = parse_json_push(
        br#"{"samples":[{"metric":"a","value":1,"labels":{"x":"long"}}]}"#,
        0,
        &lim,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "samples[0].labels.x: value of label \"x\" is 4 bytes long, more than the limit of 3"
    );
    assert_eq!(e.kind, IngestErrorKind::Limit);
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn pushgateway_paths() {
    assert_eq!(
        pushgateway_labels("myjob/instance/host1/foo@base64/YmFy").unwrap(),
        pairs(&[("job", "myjob"), ("instance", "host1"), ("foo", "bar")])
    );
    assert_eq!(
        pushgateway_labels("myjob").unwrap(),
        pairs(&[("job", "myjob"), ("instance", "")])
    );
    // With and without padding, `=` alone is empty, url-safe alphabet, trailing slash.
    assert_eq!(
        pushgateway_labels("j/a@base64/YQ==/b@base64/YQ/c@base64/=/d@base64/L3Zhci90bXA/").unwrap(),
        pairs(&[
            ("job", "j"),
            ("a", "a"),
            ("b", "a"),
            ("c", ""),
            ("d", "/var/tmp"),
            ("instance", "")
        ])
    );
    assert_eq!(
        pushgateway_labels("j/p/a%2Fb").unwrap()[1],
        ("p".to_string(), "a/b".to_string())
    );
    assert_eq!(
        pushgateway_path_labels("job@base64/bXkvam9i/instance/i").unwrap(),
        pairs(&[("job", "my/job"), ("instance", "i")])
    );
    for bad in [
        "",
        "/x",
        "j/a",
        "j/a/",
        "j/a/1/a/2",
        "j/__x/1",
        "j/a@base64/!!",
        "j/a@base64/_w",
    ] {
        assert!(pushgateway_labels(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        pushgateway_labels("j/a").unwrap_err().to_string(),
        "path.a: label name without a value"
    );
    assert!(pushgateway_path_labels("jobs/x").is_err());
    assert!(pushgateway_path_labels("job@base64/=").is_err());
}

#[test]
fn add_labels_overrides() {
    let mut s = vec![
        (
            lbl(&[
                ("__name__", "a"),
                ("job", "body"),
                ("instance", "i"),
                ("x", "1"),
            ]),
            0,
            SampleValue::Float(1.0),
        ),
        (
            lbl(&[
                ("__name__", "a"),
                ("job", "body"),
                ("instance", "i"),
                ("x", "1"),
            ]),
            1,
            SampleValue::Float(2.0),
        ),
        (lbl(&[("__name__", "b")]), 0, SampleValue::Float(1.0)),
    ];
    add_labels(&mut s, &pushgateway_labels("pj/x/2").unwrap());
    assert_eq!(s[0].0, lbl(&[("__name__", "a"), ("job", "pj"), ("x", "2")]));
    assert_eq!(s[1].0, s[0].0);
    assert_eq!(s[2].0, lbl(&[("__name__", "b"), ("job", "pj"), ("x", "2")]));
}
