//! The `--config FILE` YAML for `klaxon serve`: bearer tokens, request limits, and alert
//! delivery (an Alertmanager-compatible section plus klaxon's channels, escalation and
//! correlation; see `delivery`). Reference: `docs/configuration.md`.
//!
//! Loading is parse (`yaml`: a spanned tree) → `${VAR}` interpolation of string values
//! (`interpolate`) → typed deserialization → validation and `compile_delivery`. Unknown keys
//! are rejected so a typo (`ingest_token:`) fails at start-up instead of silently leaving an
//! endpoint open, and every error names its place: `file:line:column: yaml.path: message`.

pub mod compile;
pub mod delivery;
mod glob;
pub mod interpolate;
pub mod matchers;
pub mod route;
pub mod timeinterval;
pub(crate) mod yaml;

pub use compile::*;
pub use delivery::*;
pub use interpolate::{EnvLookup, InterpolateError, Interpolated, interpolate, process_env};
pub use matchers::{MatcherParseError, parse_matcher, parse_matchers};
pub use route::*;
pub use timeinterval::{CompiledInterval, TimeIntervalError};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown / mistyped keys.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A problem at a known place: `file:line:column: yaml.path: message`.
    #[error("{path}:{line}:{column}: {message}")]
    Located {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The YAML path (`route.routes[1].receiver`) and what is wrong there.
        message: String,
    },
}

/// Where a configuration came from and what `${VAR}` interpolation found; not part of the YAML.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSource {
    /// The file (for messages and relative `templates:` / `*_file` paths); `None` in memory.
    pub path: Option<PathBuf>,
    /// Variables that were unset or empty, by the YAML path of the value that referenced them
    /// (`channels.slack.webhook_url` → `[SLACK_WEBHOOK_URL]`), so channels can say why they are
    /// unconfigured.
    pub missing_env: BTreeMap<String, Vec<String>>,
    /// Where each YAML path starts (line, column), for placing validation errors.
    positions: BTreeMap<String, (usize, usize)>,
    /// Values substituted from the environment, scrubbed from every error message.
    redactions: Vec<Secret>,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Settings shared by every rule: `$externalLabels` and `$externalURL` in templates.
    pub global: GlobalConfig,
    /// Bearer tokens; empty lists leave the endpoints open.
    pub auth: AuthConfig,
    /// Request size and query limits.
    pub limits: LimitsConfig,
    /// Alertmanager's routing tree; every alert enters at the root.
    pub route: Option<Route>,
    /// Named sets of integrations.
    pub receivers: Vec<Receiver>,
    /// Mute targets while a matching source alert fires.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Named time ranges for `mute_time_intervals` / `active_time_intervals`.
    pub time_intervals: Vec<TimeIntervalSet>,
    /// Deprecated top-level name for `time_intervals`.
    pub mute_time_intervals: Vec<TimeIntervalSet>,
    /// Glob patterns of Go template files with `define`d templates for messages.
    pub templates: Vec<String>,
    /// klaxon: the guide's simple channels, by name.
    pub channels: std::collections::BTreeMap<String, ChannelConfig>,
    /// klaxon: escalation chains.
    pub escalation_policies: Vec<EscalationPolicy>,
    /// klaxon: correlation of related alerts into incidents.
    pub correlation: CorrelationConfig,
    /// Alertmanager's tracing settings: accepted so Alertmanager files load, not used.
    #[serde(skip_serializing)]
    pub tracing: Option<Opaque>,
    /// Provenance and interpolation results (never read from YAML).
    #[serde(skip)]
    pub source: ConfigSource,
}

/// Process-wide identity that alert templates can show (Prometheus' `global.external_labels` and
/// `--web.external-url`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct GlobalConfig {
    /// `$externalLabels` in alert templates.
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// `$externalURL` in alert templates: where people reach this klaxon.
    pub external_url: String,
    /// Alertmanager's notification defaults (`resolve_timeout`, `smtp_*`, `slack_api_url`, ...).
    #[serde(flatten)]
    pub notify: NotifyGlobal,
}

/// Bearer tokens per endpoint class.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Tokens accepted on the ingestion endpoints.
    pub ingest_tokens: Vec<String>,
    /// Tokens accepted on admin endpoints.
    pub admin_tokens: Vec<String>,
}

/// Limits that keep one request from exhausting the server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body, as sent (compressed), in bytes.
    pub max_body_bytes: usize,
    /// Largest body after decompression, in bytes.
    pub max_decompressed_bytes: usize,
    /// Most samples one ingestion request may carry.
    pub max_samples_per_request: usize,
    /// Most samples a query may hold in memory at once.
    pub max_query_samples: usize,
    /// Refuse to create series beyond this many (0 = unlimited).
    pub max_series: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_samples_per_request: 1_000_000,
            max_query_samples: 50_000_000,
            max_series: 0,
        }
    }
}

impl Config {
    /// Parses configuration text with `${VAR}` taken from the process environment; `path` names
    /// the file in messages and anchors relative paths.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::from_yaml_with_env(text, path, &process_env)
    }

    /// Parses configuration text, interpolating `${VAR}` / `${VAR:-default}` through `env`, and
    /// validates all of it (including `compile_delivery`), so an invalid file never starts.
    pub fn from_yaml_with_env(
        text: &str,
        path: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Config, ConfigError> {
        let mut cfg = Config::parse_with_env(text, path, env)?;
        cfg.source.path = Some(path.to_path_buf());
        cfg.validate(path)?;
        cfg.compile_delivery()?;
        Ok(cfg)
    }

    fn parse_with_env(text: &str, path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let mut source = ConfigSource {
            path: Some(path.to_path_buf()),
            ..ConfigSource::default()
        };
        let de_err = |e: yaml::DeError, redactions: &[Secret]| {
            let message = interpolate::redact(&e.message, redactions);
            match e.at {
                Some((yaml_path, line, column)) if line > 0 => ConfigError::Located {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: if yaml_path.is_empty() {
                        message
                    } else {
                        format!("{yaml_path}: {message}")
                    },
                },
                Some((yaml_path, _, _)) if !yaml_path.is_empty() => ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!("{yaml_path}: {message}"),
                },
                _ => ConfigError::Parse {
                    path: path.to_path_buf(),
                    message,
                },
            }
        };
        let Some(mut root) = yaml::parse(text).map_err(|e| de_err(e, &[]))? else {
            return Ok(Config {
                source,
                ..Config::default()
            });
        };
        match root.value {
            yaml::YValue::Null => {
                return Ok(Config {
                    source,
                    ..Config::default()
                });
            }
            yaml::YValue::Map(_) => {}
            _ => {
                return Err(ConfigError::Located {
                    path: path.to_path_buf(),
                    line: root.line.max(1),
                    column: root.column.max(1),
                    message: format!(
                        "the file must be a YAML mapping of sections (global, route, receivers, \
                         channels, ...), found {}",
                        root.kind()
                    ),
                });
            }
        }
        let mut report = yaml::InterpolationReport::default();
        root.interpolate(env, &mut report)
            .map_err(|e| de_err(e, &report.substituted))?;
        root.positions(&mut source.positions);
        source.missing_env = report.missing;
        source.redactions = report.substituted;
        let mut cfg: Config = yaml::from_node(&root).map_err(|e| de_err(e, &source.redactions))?;
        cfg.source = source;
        Ok(cfg)
    }

    /// Reads and parses the configuration file (`${VAR}` from the process environment).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, &process_env)
    }

    /// Reads and parses the configuration file, interpolating through `env`.
    pub fn load_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml_with_env(&text, path, env)
    }

    /// An error at a YAML path, placed at the path's (or its nearest parent's) line and column,
    /// scrubbed of interpolated values.
    pub(crate) fn located(&self, yaml_path: &str, message: &str) -> ConfigError {
        let file = self.source.path.clone().unwrap_or_default();
        let message = interpolate::redact(message, &self.source.redactions);
        let text = if yaml_path.is_empty() {
            message
        } else {
            format!("{yaml_path}: {message}")
        };
        let mut p = yaml_path;
        loop {
            if let Some(&(line, column)) = self.source.positions.get(p)
                && line > 0
            {
                return ConfigError::Located {
                    path: file,
                    line,
                    column,
                    message: text,
                };
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None if !p.is_empty() => p = "",
                None => break,
            }
        }
        ConfigError::Invalid {
            path: file,
            message: text,
        }
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        let tokens = self
            .auth
            .ingest_tokens
            .iter()
            .chain(&self.auth.admin_tokens);
        if tokens.into_iter().any(|t| t.trim().is_empty()) {
            return Err(invalid("auth: tokens must not be empty"));
        }
        if self.limits.max_body_bytes == 0 || self.limits.max_decompressed_bytes == 0 {
            return Err(invalid("limits: byte limits must be positive"));
        }
        if self.limits.max_samples_per_request == 0 || self.limits.max_query_samples == 0 {
            return Err(invalid("limits: sample limits must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens_and_limits() {
        let c = Config::from_yaml(
            "auth:\n  ingest_tokens: [a, b]\nlimits:\n  max_body_bytes: 1024\n",
            Path::new("x.yml"),
        )
        .unwrap();
        assert_eq!(c.auth.ingest_tokens, vec!["a", "b"]);
        assert!(c.auth.admin_tokens.is_empty());
        assert_eq!(c.limits.max_body_bytes, 1024);
        assert_eq!(c.limits.max_query_samples, 50_000_000);
    }

    #[test]
    fn rejects_unknown_keys() {
        let e = Config::from_yaml("auth:\n  ingest_token: [a]\n", Path::new("x.yml"));
        assert!(
            matches!(e, Err(ConfigError::Located { line: 2, .. })),
            "{e:?}"
        );
        assert!(Config::from_yaml("bogus: 1\n", Path::new("x.yml")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = Config::from_yaml_with_env(&s, Path::new("x.yml"), &|_| None);
        }

        #[test]
        fn config_like_text_never_panics(
            s in r"(route|receivers|channels|global|\$\{A:-1\}|\$\{|\$\$|: |- |\n  |\[|\]|\{|\}|'|\x22|match_re|x|0)*"
        ) {
            let env = |n: &str| (n == "A").then(|| "a: b\n- c".to_string());
            let _ = Config::from_yaml_with_env(&s, Path::new("x.yml"), &env);
        }
    }

    #[test]
    fn empty_file_is_default() {
        for text in ["", "# only a comment\n", "~\n"] {
            let c = Config::from_yaml(text, Path::new("x")).unwrap();
            assert_eq!(c.source.path.as_deref(), Some(Path::new("x")));
            assert_eq!(
                Config {
                    source: ConfigSource::default(),
                    ..c
                },
                Config::default()
            );
        }
    }
}
