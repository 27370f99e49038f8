//! The one `http_requests_total` series shape shared by the store benchmark, `store_memory` and
//! `wal_bench`: six labels, 50 series per instance by default.

#![allow(dead_code)]

use klaxon::model::Labels;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const CODES: [&str; 5] = ["200", "201", "404", "500", "503"];
const JOBS: [&str; 4] = ["api", "web", "auth", "billing"];

/// Series `i` on instance `host` (callers pass `i / 50` for 50 series per instance).
pub fn http_labels(i: usize, host: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "http_requests_total".to_string()),
        ("instance", format!("host-{host}:9090")),
        ("job", JOBS[host % JOBS.len()].to_string()),
        ("method", METHODS[i % 5].to_string()),
        ("status_code", CODES[(i / 5) % 5].to_string()),
        (
            "endpoint",
            format!("/api/v1/{}", ["users", "orders"][(i / 25) % 2]),
        ),
    ])
}
