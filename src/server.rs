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
use crate::notify::{NotifierOptions, NotifyMetrics};
use crate::pipeline::Pipeline;
use crate::rules::watch::RuleWatcher;
use crate::rules::{
    AlertEvents, AlertSink, GroupOptions, LoadOptions, Manager, ManagerOptions, RuleLoader,
    SinkOptions, load_paths,
};
use crate::state::{DurableState, ForRestore, StateOptions};
use crate::store::{Store, StoreOptions};
use crate::telemetry::{LogFormat, LogInitError, Metrics, log};
use crate::wal::{FsyncPolicy, Wal, WalOptions};

/// The config file `klaxon serve` reads when `--config` is not given and it exists.
pub const DEFAULT_CONFIG: &str = "klaxon.yaml";
/// Prometheus' default `--rules.alert.resend-delay`.
const RESEND_DELAY_MS: i64 = 60_000;
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
    /// Write-ahead log of pushed samples in `<data-dir>/wal`: `request` (fsync before each ack), an
    /// interval such as `1s` or `100ms` (group commit: a machine crash loses at most that much), or `off`.
    #[arg(long, env = "KLAXON_WAL_FSYNC", default_value = "1s")]
    pub wal_fsync: FsyncPolicy,
    /// Size at which a WAL segment is closed (`64MiB`); retention deletes whole segments.
    #[arg(long, default_value = "64MiB", value_parser = crate::wal::parse_size)]
    pub wal_segment_size: u64,
    /// How long samples are kept in memory (`1h`, `90m`, seconds).
    #[arg(long, default_value = "1h", value_parser = duration_ms)]
    pub retention: i64,
    /// Durable alert state in `<data-dir>/state.db` (`sqlite`), or `off` (memory-only).
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "off"])]
    pub state: String,
    /// How often rule and dispatcher state is snapshotted into the state database.
    #[arg(long, default_value = "1s", value_parser = duration_ms)]
    pub state_save_interval: i64,
    /// How long alert state changes and notification attempts are kept (`GET /api/v1/history`).
    #[arg(long, default_value = "7d", value_parser = duration_ms)]
    pub history_retention: i64,
    /// Longest downtime after which pending and firing alert state is still restored.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h", value_parser = duration_ms)]
    pub for_outage_tolerance: i64,
    /// Least time between a restart and a restored pending alert firing.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m", value_parser = duration_ms)]
    pub for_grace_period: i64,
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
    /// The delivery pipeline could not be built (a template that does not parse...).
    #[error("alert delivery: {0}")]
    Delivery(String),
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
    let config_path = config_path(&args);
    let config = match &config_path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    // Compile once before serving so an invalid delivery section fails at start, not at reload.
    config.compile_delivery()?;
    if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
        // Not fatal: queries and rules still work; the WAL reports the problem and refuses pushes.
        tracing::error!(event_type = "error", path = %args.data_dir.display(), error = %e,
            "cannot create the data directory");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the async runtime"))?;
    crate::notify::install_crypto_provider();
    let result = runtime.block_on(serve(args, config, config_path, clock));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// `--config`, else `klaxon.yaml` in the working directory when it exists, else none (embedded
/// defaults).
pub fn config_path(args: &ServeArgs) -> Option<PathBuf> {
    args.config.clone().or_else(|| {
        let p = PathBuf::from(DEFAULT_CONFIG);
        p.is_file().then_some(p)
    })
}

/// The delivery pipeline over `config`; unconfigured channels are logged, never fatal.
fn build_pipeline(
    config: &Config,
    path: Option<PathBuf>,
    clock: &SharedClock,
    notify_metrics: Arc<NotifyMetrics>,
) -> Result<Arc<Pipeline>, ServerError> {
    let delivery = config.compile_delivery()?;
    let pipeline = Pipeline::new(
        delivery,
        Arc::clone(clock),
        notify_metrics,
        NotifierOptions::default(),
        path,
    )
    .map_err(|e| ServerError::Delivery(e.to_string()))?;
    for u in pipeline.config_status().unconfigured {
        tracing::warn!(event_type = "notification", integration = %u,
            "notification channel unconfigured: its alerts are kept and counted, not sent");
    }
    Ok(pipeline)
}

fn build_state(
    args: &ServeArgs,
    config: &Config,
    config_path: Option<PathBuf>,
    clock: SharedClock,
    durable: Arc<DurableState>,
) -> Result<Shared, ServerError> {
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
    let wal = open_wal(args, &store, clock.now_ms());
    let notify_metrics = Arc::new(NotifyMetrics::default());
    let metrics = Arc::new(Metrics::with_extra(|reg| notify_metrics.register(reg)));
    let rules = rule_manager(args, config, &engine, &store, &clock, &metrics, &durable);
    let pipeline = build_pipeline(config, config_path.clone(), &clock, notify_metrics)?;
    pipeline.set_durable(Arc::clone(&durable));
    rules.set_alert_sink(SinkOptions {
        sink: Arc::clone(&pipeline) as Arc<dyn AlertSink>,
        resend_delay_ms: RESEND_DELAY_MS,
        external_url: config.global.external_url.clone(),
    });
    Ok(Arc::new(AppState {
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
        wal,
        pipeline,
        config_path,
        durable,
    }))
}

/// Durable-state settings from the flags.
fn state_options(args: &ServeArgs) -> StateOptions {
    StateOptions {
        enabled: args.state != "off",
        save_interval_ms: args.state_save_interval,
        history_retention_ms: args.history_retention,
        for_restore: ForRestore {
            outage_tolerance_ms: args.for_outage_tolerance,
            grace_period_ms: args.for_grace_period,
        },
        ..StateOptions::in_dir(&args.data_dir)
    }
}

/// Opens `<data-dir>/wal` and replays it into `store` before anything is served (`None` when off).
fn open_wal(args: &ServeArgs, store: &Store, now: i64) -> Option<Arc<Wal>> {
    if args.wal_fsync == FsyncPolicy::Off {
        tracing::warn!(
            event_type = "system",
            "write-ahead log off (--wal-fsync off): pushed samples do not survive a restart"
        );
        return None;
    }
    let opts = WalOptions {
        dir: args.data_dir.join("wal"),
        fsync: args.wal_fsync,
        segment_bytes: args.wal_segment_size,
    };
    Some(Wal::open(opts, store, now.saturating_sub(args.retention)).0)
}

/// The rule manager over the server's engine and store, loading `--rules` on every reload.
fn rule_manager(
    args: &ServeArgs,
    config: &Config,
    engine: &Engine,
    store: &Arc<Store>,
    clock: &SharedClock,
    metrics: &Arc<Metrics>,
    durable: &Arc<DurableState>,
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
            events: Some(Arc::clone(durable) as Arc<dyn AlertEvents>),
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
        if let Some(path) = st.config_path.clone() {
            let pipeline = Arc::clone(&st.pipeline);
            let outcome = pipeline.reload_file(&path);
            match outcome {
                Ok(()) => tracing::info!(event_type = "system", trigger, path = %path.display(),
                    "delivery config reloaded"),
                Err(e) => tracing::error!(event_type = "error", trigger, path = %path.display(),
                    error = %e, "delivery config reload failed; keeping the running config"),
            }
        }
        let mgr = st.rules.clone();
        let reloaded = tokio::task::spawn_blocking(move || mgr.reload()).await;
        st.pipeline.dispatcher.set_rule_meta(st.rules.rule_meta());
        match reloaded {
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

async fn serve(
    args: ServeArgs,
    config: Config,
    config_path: Option<PathBuf>,
    clock: SharedClock,
) -> Result<(), ServerError> {
    let durable = DurableState::open(state_options(&args), Arc::clone(&clock)).await;
    let state = build_state(&args, &config, config_path, clock, durable)?;
    let (host, port) = listen_target(&args.listen, args.metrics_port)?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(io(format!("listening on {host}:{port}")))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the listen address"))?;
    log_startup(&args, &state, addr);
    // Saved rule state is handed over before the first load, so no group evaluates without it.
    let loaded = state.durable.load().await;
    if let Some(l) = &loaded {
        let saved_ms = l.saved_ms.unwrap_or_else(|| state.clock.now_ms());
        let opts = state.durable.options().for_restore;
        state
            .rules
            .restore_alert_state(l.rules.clone(), saved_ms, opts);
    }
    state.rules.start();
    {
        let mgr = state.rules.clone();
        let _ = tokio::task::spawn_blocking(move || mgr.reload()).await;
    }
    state
        .pipeline
        .dispatcher
        .set_rule_meta(state.rules.rule_meta());
    if let Some(l) = loaded {
        let now = state.clock.now_ms();
        state.pipeline.restore(l.dispatch, l.outbox, now).await;
    }
    let (pipeline_stop, pipeline_rx) = tokio::sync::watch::channel(false);
    let pipeline = tokio::spawn(Arc::clone(&state.pipeline).run(pipeline_rx));
    let (saver_stop, saver_rx) = tokio::sync::watch::channel(false);
    let saver = tokio::spawn(Arc::clone(&state.durable).run(
        state.rules.clone(),
        Arc::clone(&state.pipeline.dispatcher),
        saver_rx,
    ));
    let mut watched = args.rules.clone();
    watched.extend(state.config_path.clone());
    let reloads = tokio::spawn(reload_loop(Arc::clone(&state), watched));
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
    let _ = pipeline_stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, pipeline)
        .await
        .is_err()
    {
        tracing::warn!(
            event_type = "system",
            "notification queues did not drain in time"
        );
    }
    let _ = saver_stop.send(true);
    let _ = saver.await;
    state
        .durable
        .shutdown(&state.rules, &state.pipeline.dispatcher)
        .await;
    if let Some(wal) = &state.wal
        && let Err(e) = wal.sync()
    {
        tracing::error!(event_type = "error", error = %e, "final WAL fsync failed");
    }
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
            if let Some(wal) = &st2.wal
                && let Err(e) = wal.truncate(now.saturating_sub(st2.store.options().retention_ms))
            {
                tracing::error!(event_type = "error", error = %e, "WAL retention failed");
            }
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
