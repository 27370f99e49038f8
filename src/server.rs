//! `klaxon serve`: wiring (config, logging, store, engine, router), the listener, the retention
//! task and graceful shutdown on SIGINT / SIGTERM (in-flight requests finish, then exit 0).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::alert::GoTemplater;
use crate::api::{self, AppState, AuthTokens, Shared, Stats};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::eval::{Engine, EngineOptions};
use crate::expr::parse_duration;
use crate::ingest::Limits;
use crate::rules::watch::RuleWatcher;
use crate::rules::{GroupOptions, LoadOptions, Manager, ManagerOptions, RuleLoader, load_paths};
use crate::store::{Store, StoreOptions};
use crate::telemetry::{LogFormat, LogInitError, Metrics, log};

/// How often retention runs.
const GC_INTERVAL: Duration = Duration::from_secs(60);
/// How long shutdown waits for in-flight requests before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Flags of `klaxon serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Listen address: `host` (port from METRICS_PORT) or `host:port`.
    #[arg(long, default_value = "0.0.0.0")]
    pub listen: String,
    /// Port used when `--listen` names only a host.
    #[arg(long, env = "METRICS_PORT", default_value_t = 9090)]
    pub metrics_port: u16,
    /// Rule files or directories; watched and hot-reloaded (also on SIGHUP and `POST /-/reload`).
    #[arg(long, num_args = 1.., default_value = "rules/")]
    pub rules: Vec<PathBuf>,
    /// Evaluation interval of rule groups that set none.
    #[arg(long, default_value = "15s", value_parser = duration_ms)]
    pub evaluation_interval: i64,
    /// YAML configuration file (auth tokens, limits).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory for durable state; created if missing.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// How long samples are kept in memory (`1h`, `90m`, seconds).
    #[arg(long, default_value = "1h", value_parser = duration_ms)]
    pub retention: i64,
    /// Longest a query may run; also the default of the `timeout` parameter.
    #[arg(long, default_value = "2m", value_parser = duration_ms)]
    pub query_timeout: i64,
    /// Log level (`DEBUG`, `INFO`, `WARNING`, `ERROR`, or an `EnvFilter` directive).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Also write JSON logs to `DIR/klaxon.log`.
    #[arg(long, env = "LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Log format on stdout; default: text on a terminal, JSON otherwise.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

fn duration_ms(s: &str) -> Result<i64, String> {
    match parse_duration(s) {
        Ok(ms) if ms > 0 => Ok(ms),
        Ok(_) => Err("must be positive".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Logging could not be set up.
    #[error(transparent)]
    Log(#[from] LogInitError),
    /// The listen address is malformed.
    #[error("invalid --listen {0:?}: expected host or host:port")]
    ListenSyntax(String),
    /// An IO step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// Splits `--listen` into host and port: `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
pub fn listen_target(listen: &str, default_port: u16) -> Result<(String, u16), ServerError> {
    let l = listen.trim();
    let bad = || ServerError::ListenSyntax(listen.to_string());
    if l.is_empty() {
        return Err(bad());
    }
    if let Ok(sa) = l.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    if let Ok(ip) = l.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok((ip.to_string(), default_port));
    }
    match l.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Ok((host.to_string(), port.parse().map_err(|_| bad())?))
        }
        Some(_) => Err(bad()),
        None => Ok((l.to_string(), default_port)),
    }
}

/// Runs the server until SIGINT / SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), ServerError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let format = args.log_format.unwrap_or_else(|| {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    });
    log::init(
        format,
        &args.log_level,
        args.log_dir.as_deref(),
        Arc::clone(&clock),
    )?;
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    std::fs::create_dir_all(&args.data_dir).map_err(io(format!(
        "creating data directory {}",
        args.data_dir.display()
    )))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the async runtime"))?;
    let result = runtime.block_on(serve(args, config, clock));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

fn build_state(args: &ServeArgs, config: &Config, clock: SharedClock) -> Shared {
    let store = Store::new(StoreOptions {
        retention_ms: args.retention,
        max_series: config.limits.max_series,
        ..StoreOptions::default()
    });
    let engine = Engine::new(EngineOptions {
        max_samples: config.limits.max_query_samples,
        ..EngineOptions::default()
    });
    let limits = Limits {
        max_body_bytes: config.limits.max_body_bytes,
        max_decompressed_bytes: config.limits.max_decompressed_bytes,
        max_samples: config.limits.max_samples_per_request,
        ..Limits::default()
    };
    let store = Arc::new(store);
    let metrics = Arc::new(Metrics::new());
    let rules = rule_manager(args, config, &engine, &store, &clock, &metrics);
    Arc::new(AppState {
        store,
        engine,
        started_ms: clock.now_ms(),
        clock,
        metrics,
        auth: AuthTokens {
            ingest: config.auth.ingest_tokens.clone(),
            admin: config.auth.admin_tokens.clone(),
        },
        limits,
        query_timeout: Duration::from_millis(args.query_timeout.unsigned_abs()),
        shutting_down: AtomicBool::new(false),
        stats: Stats::default(),
        rules,
    })
}

/// The rule manager over the server's engine and store, loading `--rules` on every reload.
fn rule_manager(
    args: &ServeArgs,
    config: &Config,
    engine: &Engine,
    store: &Arc<Store>,
    clock: &SharedClock,
    metrics: &Arc<Metrics>,
) -> Manager {
    let paths = args.rules.clone();
    let load_opts = LoadOptions {
        default_interval_ms: args.evaluation_interval,
    };
    let loader: RuleLoader = Arc::new(move || {
        let report = load_paths(&paths, &load_opts);
        for w in &report.warnings {
            tracing::warn!(event_type = "system", warning = %w.render_warning(), "rule file warning");
        }
        if report.is_ok() {
            Ok(report.rule_set)
        } else {
            Err(report.errors.iter().map(|d| d.render()).collect())
        }
    });
    Manager::new(ManagerOptions {
        engine: engine.clone(),
        store: Arc::clone(store),
        clock: Arc::clone(clock),
        metrics: Some(Arc::clone(metrics)),
        group: GroupOptions {
            templater: Arc::new(GoTemplater {
                external_labels: config.global.external_labels.clone(),
                external_url: config.global.external_url.clone(),
            }),
            ..GroupOptions::default()
        },
        loader: Some(loader),
    })
}

/// Reloads the rules on SIGHUP and on file changes (debounced), until the process stops.
async fn reload_loop(st: Shared, paths: Vec<PathBuf>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let watch_tx = tx.clone();
    let mut watcher = match RuleWatcher::start(paths, move || {
        let _ = watch_tx.send("file change");
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(event_type = "error", error = %e,
                "rule file watcher failed; reload with SIGHUP or POST /-/reload");
            None
        }
    };
    #[cfg(unix)]
    {
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send("SIGHUP").is_err() {
                        break;
                    }
                }
            });
        }
    }
    while let Some(trigger) = rx.recv().await {
        while rx.try_recv().is_ok() {}
        let mgr = st.rules.clone();
        match tokio::task::spawn_blocking(move || mgr.reload()).await {
            Ok(status) => tracing::info!(
                event_type = "system",
                trigger,
                success = status.success,
                errors = status.errors.len(),
                "rules reload"
            ),
            Err(e) => tracing::error!(event_type = "error", error = %e, "rules reload task failed"),
        }
        if let Some(w) = watcher.as_mut() {
            w.refresh();
        }
    }
}

async fn serve(args: ServeArgs, config: Config, clock: SharedClock) -> Result<(), ServerError> {
    let state = build_state(&args, &config, clock);
    let (host, port) = listen_target(&args.listen, args.metrics_port)?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(io(format!("listening on {host}:{port}")))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the listen address"))?;
    log_startup(&args, &state, addr);
    state.rules.start();
    {
        let mgr = state.rules.clone();
        let _ = tokio::task::spawn_blocking(move || mgr.reload()).await;
    }
    let reloads = tokio::spawn(reload_loop(Arc::clone(&state), args.rules.clone()));
    let gc = tokio::spawn(retention_loop(Arc::clone(&state)));
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let signal_state = Arc::clone(&state);
    let server =
        axum::serve(listener, api::router(Arc::clone(&state))).with_graceful_shutdown(async move {
            shutdown_signal(&signal_state).await;
            let _ = tx.send(true);
        });
    let deadline = async move {
        let _ = rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let outcome = tokio::select! {
        r = std::future::IntoFuture::into_future(server) => r.map_err(io("serving HTTP")),
        _ = deadline => {
            tracing::warn!(event_type = "system", grace_seconds = SHUTDOWN_GRACE.as_secs(),
                "shutdown grace period over; exiting with requests still open");
            Ok(())
        }
    };
    gc.abort();
    reloads.abort();
    state.rules.stop();
    tracing::info!(event_type = "system", "klaxon stopped");
    outcome
}

fn log_startup(args: &ServeArgs, st: &Shared, addr: SocketAddr) {
    tracing::info!(
        event_type = "system",
        listen_addr = %addr,
        data_dir = %args.data_dir.display(),
        retention_seconds = args.retention / 1000,
        query_timeout_seconds = args.query_timeout / 1000,
        max_body_bytes = st.limits.max_body_bytes,
        version = env!("CARGO_PKG_VERSION"),
        "klaxon listening"
    );
    for p in &args.rules {
        tracing::info!(
            event_type = "system",
            path = %p.display(),
            exists = p.exists(),
            evaluation_interval_seconds = args.evaluation_interval / 1000,
            "rules path watched"
        );
    }
    if st.auth.ingest.is_empty() {
        tracing::warn!(
            event_type = "security",
            "ingestion endpoints are open: no auth.ingest_tokens configured"
        );
    } else {
        tracing::info!(
            event_type = "security",
            tokens = st.auth.ingest.len(),
            "ingestion endpoints require a bearer token"
        );
    }
}

async fn shutdown_signal(st: &Shared) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let signal = tokio::select! {
        _ = ctrl_c => "SIGINT",
        _ = term => "SIGTERM",
    };
    st.shutting_down.store(true, Ordering::SeqCst);
    tracing::info!(
        event_type = "system",
        signal,
        "shutdown requested; finishing in-flight requests"
    );
}

/// Applies retention every minute: series with nothing newer than the retention window are deleted.
async fn retention_loop(st: Shared) {
    let mut tick = tokio::time::interval(GC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let st2 = Arc::clone(&st);
        let res = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let now = st2.clock.now_ms();
            let out = st2.store.gc(now);
            st2.stats.last_gc_ms.store(now, Ordering::Relaxed);
            (out, started.elapsed())
        })
        .await;
        match res {
            Ok((out, took)) => {
                st.metrics.record_retention(out.series_removed);
                tracing::debug!(
                    event_type = "performance",
                    samples_removed = out.samples_removed,
                    series_removed = out.series_removed,
                    duration_ms = took.as_secs_f64() * 1000.0,
                    "retention pass"
                );
            }
            Err(e) => tracing::error!(event_type = "error", error = %e, "retention pass failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        let t = |s| listen_target(s, 9090).ok();
        assert_eq!(t("0.0.0.0"), Some(("0.0.0.0".into(), 9090)));
        assert_eq!(t("127.0.0.1:0"), Some(("127.0.0.1".into(), 0)));
        assert_eq!(t("localhost:8080"), Some(("localhost".into(), 8080)));
        assert_eq!(t("localhost"), Some(("localhost".into(), 9090)));
        assert_eq!(t("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(t("::1"), Some(("::1".into(), 9090)));
        assert_eq!(t("host:x"), None);
        assert_eq!(t(""), None);
    }
}
