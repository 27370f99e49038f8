//! Properties shared by the `delivery_input` cargo-fuzz target and `tests/delivery_input.rs`:
//! every parser of untrusted delivery input (Alertmanager matchers from `filter=` and configs,
//! the config file, silence and alert bodies of the v2 API) answers with a value or an error,
//! never a panic, and matchers that parse print back to text that parses to the same matchers.

use std::path::Path;
use std::sync::Arc;

use klaxon::config::{Config, parse_matchers};
use klaxon::dispatch::{Dispatcher, PostableSilence, PostedAlert};

/// Splits the fuzz input by its first byte into one of the parsers.
pub fn delivery_input_property(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match sel % 4 {
        0 => matchers_roundtrip(&text),
        1 => {
            let env = |name: &str| (name == "SET").then(|| "value".to_string());
            let _ = Config::from_yaml_with_env(&text, Path::new("fuzz.yml"), &env)
                .and_then(|c| c.compile_delivery().map(|_| c));
        }
        2 => {
            if let Ok(s) = serde_json::from_str::<PostableSilence>(&text) {
                let d = dispatcher();
                let _ = d.put_silence(s, 1_700_000_000_000);
                let _ = d.silences_json(&[], 1_700_000_000_000);
            }
        }
        _ => {
            if let Ok(raw) = serde_json::from_str::<
                Vec<(
                    std::collections::BTreeMap<String, String>,
                    Option<i64>,
                    Option<i64>,
                )>,
            >(&text)
            {
                let posted = raw
                    .into_iter()
                    .map(|(labels, starts_at, ends_at)| PostedAlert {
                        labels,
                        annotations: Default::default(),
                        starts_at,
                        ends_at,
                        generator_url: String::new(),
                    })
                    .collect();
                let d = dispatcher();
                if let Ok(alerts) = d.normalize_posted(posted, 1_700_000_000_000) {
                    d.put_alerts(alerts, 1_700_000_000_000);
                    let _ = d.tick(1_700_000_000_000 + 60_000);
                }
            }
        }
    }
}

fn dispatcher() -> Dispatcher {
    let cfg = Config::from_yaml("", Path::new("empty.yml")).expect("empty config");
    Dispatcher::new(Arc::new(cfg.compile_delivery().expect("compiles")))
}

/// Parsed matchers print (Display) as text that parses to the same matchers.
pub fn matchers_roundtrip(text: &str) {
    let Ok(ms) = parse_matchers(text) else {
        return;
    };
    let printed = ms
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let again = parse_matchers(&format!("{{{printed}}}"))
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} which fails: {e}"));
    assert_eq!(ms.len(), again.len(), "{text:?} -> {printed:?}");
    for (a, b) in ms.iter().zip(&again) {
        assert_eq!(
            (&a.name, a.op, &a.value),
            (&b.name, b.op, &b.value),
            "{text:?} -> {printed:?}"
        );
    }
}
