//! Delivery benchmark (issue 5): notifications per second through the real pipeline
//! (dispatcher → notifier → HTTP webhook on loopback) with rate limits off, and the delay from
//! the rule evaluation that fires an alert to the webhook receiving it with `group_wait: 0s`.
//!
//! Run: `cargo run --release --example delivery_bench -- [groups] [latency_samples]`
//! (defaults 20000 and 200).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use klaxon::clock::{SharedClock, SystemClock};
use klaxon::config::Config;
use klaxon::dispatch::Alert;
use klaxon::eval::{Engine, EngineOptions};
use klaxon::model::{Labels, SampleValue};
use klaxon::notify::{NotifierOptions, NotifyMetrics};
use klaxon::pipeline::Pipeline;
use klaxon::rules::{AlertSink, GroupOptions, LoadOptions, Manager, ManagerOptions, SinkOptions};
use klaxon::store::{Store, StoreOptions};
use tokio::sync::Notify;

/// A webhook receiver that only counts requests and wakes waiters.
async fn start_sink() -> (String, Arc<AtomicU64>, Arc<Notify>) {
    let count = Arc::new(AtomicU64::new(0));
    let notify = Arc::new(Notify::new());
    let (c, n) = (Arc::clone(&count), Arc::clone(&notify));
    let app = Router::new().route(
        "/hook",
        post(move || {
            let (c, n) = (Arc::clone(&c), Arc::clone(&n));
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                n.notify_waiters();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), count, notify)
}

fn pipeline(url: &str, clock: &SharedClock) -> Arc<Pipeline> {
    let yaml = format!(
        "route:\n  receiver: hook\n  group_by: [alertname, instance]\n  group_wait: 0s\n  \
         group_interval: 1h\n  repeat_interval: 24h\nreceivers:\n  - name: hook\n    \
         webhook_configs:\n      - url: \"{url}\"\n"
    );
    let cfg = Config::from_yaml(&yaml, Path::new("bench.yml")).expect("config");
    let delivery = cfg.compile_delivery().expect("compile");
    Pipeline::new(
        delivery,
        Arc::clone(clock),
        Arc::new(NotifyMetrics::default()),
        NotifierOptions::default(),
        None,
    )
    .expect("pipeline")
}

async fn wait_for(count: &AtomicU64, notify: &Notify, target: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while count.load(Ordering::SeqCst) < target {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(20)), notify.notified()).await;
    }
    true
}

async fn throughput(groups: u64, clock: &SharedClock) {
    let (url, count, notify) = start_sink().await;
    let p = pipeline(&url, clock);
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(Arc::clone(&p).run(rx));
    let now = clock.now_ms();
    let alerts: Vec<Alert> = (0..groups)
        .map(|i| Alert {
            labels: Labels::from_pairs([
                ("alertname", "BenchAlert".to_string()),
                ("instance", format!("host-{i}")),
            ]),
            annotations: Labels::from_pairs([("summary", "benchmark")]),
            starts_at: now,
            ends_at: now + 3_600_000,
            generator_url: String::new(),
            updated_at: now,
            timeout: false,
        })
        .collect();
    let started = Instant::now();
    p.put_alerts(alerts);
    let ok = wait_for(&count, &notify, groups, Duration::from_secs(300)).await;
    let took = started.elapsed();
    let got = count.load(Ordering::SeqCst);
    println!(
        "throughput: {got} notifications (one group each, webhook on loopback, no rate limit) in \
         {:.3} s = {:.0} notifications/s{}",
        took.as_secs_f64(),
        got as f64 / took.as_secs_f64(),
        if ok { "" } else { " (timed out)" }
    );
}

async fn latency(samples: usize, clock: &SharedClock) {
    let (url, count, notify) = start_sink().await;
    let p = pipeline(&url, clock);
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(Arc::clone(&p).run(rx));
    let store = Arc::new(Store::new(StoreOptions::default()));
    let engine = Engine::new(EngineOptions::default());
    let rules = "groups:\n  - name: bench\n    interval: 1h\n    rules:\n      - alert: Down\n        \
                 expr: bench_up == 0\n";
    let report = klaxon::rules::load_str(rules, Path::new("bench.yml"), &LoadOptions::default());
    assert!(report.is_ok(), "rules load");
    let mgr = Manager::new(ManagerOptions {
        engine,
        store: Arc::clone(&store),
        clock: Arc::clone(clock),
        metrics: None,
        group: GroupOptions::default(),
        loader: None,
    });
    mgr.apply(report.rule_set);
    mgr.set_alert_sink(SinkOptions {
        sink: Arc::clone(&p) as Arc<dyn AlertSink>,
        resend_delay_ms: 60_000,
        external_url: "http://bench".into(),
    });
    let mut delays = Vec::with_capacity(samples);
    for i in 0..samples {
        let labels = Labels::from_pairs([
            ("__name__", "bench_up".to_string()),
            ("instance", format!("i-{i}")),
        ]);
        store
            .append(&labels, clock.now_ms(), SampleValue::Float(0.0))
            .expect("append");
        let before = count.load(Ordering::SeqCst);
        let mgr2 = mgr.clone();
        let started = Instant::now();
        tokio::task::spawn_blocking(move || mgr2.eval_group_now("bench"))
            .await
            .unwrap()
            .expect("eval");
        let eval_done = started.elapsed();
        assert!(
            wait_for(&count, &notify, before + 1, Duration::from_secs(10)).await,
            "webhook never received alert {i}"
        );
        let _ = eval_done;
        delays.push(started.elapsed());
    }
    delays.sort();
    let pct = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!(
        "latency (evaluation start → webhook received, group_wait 0s, {samples} alerts, {} series \
         in the rule's result at the end): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        delays[delays.len() - 1].as_secs_f64() * 1e3,
    );
}

fn main() {
    klaxon::notify::install_crypto_provider();
    let mut args = std::env::args().skip(1);
    let groups: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clock: SharedClock = Arc::new(SystemClock);
    rt.block_on(async {
        throughput(groups, &clock).await;
        latency(samples, &clock).await;
    });
}
