//! Fuzz target: the expression parser never panics, and every tree it returns prints to text
//! that parses back to the same tree. Run with `cargo fuzz run expr_parse -s none` (stable).
#![no_main]

use klaxon::expr::{Expr, parse};
use libfuzzer_sys::fuzz_target;

/// Structural identity: spans ignored, NaN equal to NaN.
fn key(e: &Expr) -> String {
    let mut e = e.clone();
    e.clear_spans();
    format!("{e:?}")
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = parse(src) {
        let printed = e.to_string();
        let again = match parse(&printed) {
            Ok(a) => a,
            Err(d) => panic!(
                "{src:?} printed as {printed:?} does not parse: {}",
                d.message
            ),
        };
        assert_eq!(key(&again), key(&e), "{src:?} printed as {printed:?}");
        assert_eq!(again.to_string(), printed);
        let _ = klaxon::expr::check(&e);
    }
});
