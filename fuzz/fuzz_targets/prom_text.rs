//! Fuzz target: the text parsers (0.0.4, OpenMetrics, JSON push, Pushgateway paths) never panic,
//! and every 0.0.4 body that parses re-encodes to text that parses to the same samples.
//! Run with `cargo fuzz run prom_text -s none` (stable); the corpus is replayed by
//! `tests/ingest_roundtrip.rs` on every `cargo test`.
#![no_main]

#[path = "../../tests/ingest/fuzz_props.rs"]
mod fuzz_props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_props::prom_text_property(data);
});
