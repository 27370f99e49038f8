//! The `delivery_input` fuzz properties on stable: random and structured inputs, plus a replay of
//! `fuzz/corpus/delivery_input/`.

#[path = "delivery_input/fuzz_props.rs"]
mod fuzz_props;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzz_props::delivery_input_property(&data);
    }

    #[test]
    fn matcher_like_text_roundtrips(
        parts in proptest::collection::vec(
            ("[a-z_][a-z0-9_]{0,6}", prop_oneof!["=", "!=", "=~", "!~"], "[ -~]{0,8}"),
            0..4,
        ),
        braces in any::<bool>(),
    ) {
        let body = parts
            .iter()
            .map(|(n, op, v)| format!("{n}{op}{v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let text = if braces { format!("{{{body}}}") } else { body };
        fuzz_props::matchers_roundtrip(&text);
    }

    #[test]
    fn silence_bodies_never_panic(
        name in "[a-z]{0,4}", value in "[ -~]{0,6}", regex in any::<bool>(), equal in any::<bool>(),
        start in 0i64..4_000_000_000, len in -10_000i64..10_000_000,
    ) {
        let fmt = klaxon::telemetry::time::format_rfc3339_ms;
        let body = serde_json::json!({
            "matchers": [{"name": name, "value": value, "isRegex": regex, "isEqual": equal}],
            "startsAt": fmt(start * 1000), "endsAt": fmt(start * 1000 + len),
            "createdBy": "p", "comment": "c",
        });
        let mut data = vec![2u8];
        data.extend(body.to_string().into_bytes());
        fuzz_props::delivery_input_property(&data);
    }
}

#[test]
fn corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/delivery_input");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.unwrap().path();
        fuzz_props::delivery_input_property(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "corpus is empty");
}
