//! Structured logs in the operations guide's shape, written by a small `tracing` layer:
//!
//! ```json
//! {"timestamp":"2024-01-15T10:30:45.123Z","level":"INFO","message":"request finished",
//!  "event_type":"request","context":{"correlation_id":"...","trace_id":"...","span_id":"..."},
//!  "metadata":{"module":"klaxon::api","target":"klaxon::api","line":42,"duration_ms":1.5}}
//! ```
//!
//! Events name their class with an `event_type` field (`request`, `error`, `security`,
//! `performance`, `system`, `audit`); without one, errors are `error` and the rest `system`.
//! Fields of enclosing spans (the per-request span carries `correlation_id`, `trace_id`,
//! `span_id`) go to `context`; the event's other fields go to `metadata`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use super::time::format_rfc3339_ms;
use crate::clock::SharedClock;

/// How log lines are rendered on stdout (files are always JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    /// `LOG_LEVEL` is not a level or filter directive.
    #[error("invalid LOG_LEVEL {0:?}")]
    Level(String),
    /// The log directory or file could not be opened.
    #[error("opening log file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A global subscriber was already installed.
    #[error("logging already initialised")]
    AlreadySet,
}

/// Turns `LOG_LEVEL` (`INFO`, `WARNING`, `CRITICAL`, or a full `EnvFilter` directive) into a filter.
pub fn level_filter(level: &str) -> Result<EnvFilter, LogInitError> {
    let l = level.trim();
    let directive = match l.to_ascii_lowercase().as_str() {
        "warning" => "warn".to_string(),
        "critical" | "fatal" => "error".to_string(),
        "" => "info".to_string(),
        lower @ ("trace" | "debug" | "info" | "warn" | "error" | "off") => lower.to_string(),
        _ if !l.contains(['=', ',']) => return Err(LogInitError::Level(level.to_string())),
        _ => l.to_string(),
    };
    EnvFilter::try_new(&directive).map_err(|_| LogInitError::Level(level.to_string()))
}

/// Installs the global subscriber: `format` on stdout, plus JSON lines in `dir/klaxon.log` when `dir` is set.
pub fn init(
    format: LogFormat,
    level: &str,
    dir: Option<&Path>,
    clock: SharedClock,
) -> Result<(), LogInitError> {
    let filter = level_filter(level)?;
    let file = match dir {
        Some(d) => Some(Mutex::new(open_log_file(d)?)),
        None => None,
    };
    let layer = GuideLayer {
        format,
        clock,
        file,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .map_err(|_| LogInitError::AlreadySet)
}

fn open_log_file(dir: &Path) -> Result<File, LogInitError> {
    let path = dir.join("klaxon.log");
    std::fs::create_dir_all(dir)
        .and_then(|_| OpenOptions::new().create(true).append(true).open(&path))
        .map_err(|source| LogInitError::File { path, source })
}

/// Span fields captured at creation, read back when an event inside the span is logged.
#[derive(Debug, Default)]
struct SpanFields(Map<String, Value>);

#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().to_string(), v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_string(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
}

/// The layer that renders events in the guide's shape.
struct GuideLayer {
    format: LogFormat,
    clock: SharedClock,
    file: Option<Mutex<File>>,
}

/// The guide's level names.
fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

impl<S> Layer<S> for GuideLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = JsonVisitor::default();
        attrs.record(&mut v);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(v.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut v = JsonVisitor::default();
            values.record(&mut v);
            let mut ext = span.extensions_mut();
            if let Some(f) = ext.get_mut::<SpanFields>() {
                f.0.extend(v.0);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = JsonVisitor::default();
        event.record(&mut fields);
        let mut fields = fields.0;
        let message = match fields.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let event_type = match fields.remove("event_type") {
            Some(Value::String(s)) => s,
            _ if *meta.level() == Level::ERROR => "error".to_string(),
            _ => "system".to_string(),
        };
        let mut context = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    context.extend(f.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut metadata = Map::new();
        metadata.insert(
            "module".into(),
            Value::from(meta.module_path().unwrap_or(meta.target())),
        );
        metadata.insert("target".into(), Value::from(meta.target()));
        if let Some(line) = meta.line() {
            metadata.insert("line".into(), Value::from(line));
        }
        metadata.extend(fields);
        let timestamp = format_rfc3339_ms(self.clock.now_ms());
        let level = level_name(meta.level());
        // Written by hand so the keys keep the guide's order (serde_json maps sort keys).
        let json = format!(
            "{{\"timestamp\":{},\"level\":{},\"message\":{},\"event_type\":{},\"context\":{},\"metadata\":{}}}",
            Value::from(timestamp.as_str()),
            Value::from(level),
            Value::from(message.as_str()),
            Value::from(event_type.as_str()),
            Value::Object(context.clone()),
            Value::Object(metadata.clone()),
        );
        let stdout_line = match self.format {
            LogFormat::Json => json.clone(),
            LogFormat::Text => {
                let mut line = format!("{timestamp} {level:<7} [{event_type}] {message}");
                for (k, v) in context.iter().chain(
                    metadata
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "module" | "target" | "line")),
                ) {
                    match v {
                        Value::String(s) => line.push_str(&format!(" {k}={s}")),
                        other => line.push_str(&format!(" {k}={other}")),
                    }
                }
                line
            }
        };
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{stdout_line}");
        }
        if let Some(f) = &self.file {
            let _ = writeln!(f.lock(), "{json}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_levels_map_to_filters() {
        for l in [
            "INFO",
            "WARNING",
            "critical",
            "debug",
            "klaxon=debug,info",
            "",
        ] {
            assert!(level_filter(l).is_ok(), "{l}");
        }
        assert!(level_filter("loud").is_err());
    }
}
