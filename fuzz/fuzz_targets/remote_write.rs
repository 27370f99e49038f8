//! Fuzz target: the remote write decoder never panics on any body, and whatever it accepts
//! re-encodes to a request that decodes to the same samples, floats compared bit for bit.
//! Run with `cargo fuzz run remote_write -s none` (stable); the corpus is replayed by
//! `tests/ingest_roundtrip.rs` on every `cargo test`.
#![no_main]

#[path = "../../tests/ingest/fuzz_props.rs"]
mod fuzz_props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_props::remote_write_property(data);
});
