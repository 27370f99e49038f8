//! Fuzz target: delivery input parsers (Alertmanager matchers, the config file, v2 silence and
//! alert bodies) never panic, and matchers round-trip through their printed form.
//! Run with `cargo fuzz run delivery_input -s none` (stable); the corpus is replayed by
//! `tests/delivery_input.rs` on every `cargo test`.
#![no_main]

#[path = "../../tests/delivery_input/fuzz_props.rs"]
mod fuzz_props;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_props::delivery_input_property(data);
});
