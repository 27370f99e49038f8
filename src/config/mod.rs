//! The `--config FILE` YAML for `klaxon serve`: bearer tokens, request limits, and alert
//! delivery (an Alertmanager-compatible section plus klaxon's channels, escalation and
//! correlation; see `delivery`).
//!
//! Unknown keys are rejected so a typo (`ingest_token:`) fails at start-up instead of silently
//! leaving an endpoint open.

pub mod compile;
pub mod delivery;
pub mod route;

pub use compile::*;
pub use delivery::*;
pub use route::*;

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
    /// Parses configuration text; `path` is only used in error messages.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let cfg: Config = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Reads and parses the configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text, path)
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
        assert!(matches!(e, Err(ConfigError::Parse { .. })), "{e:?}");
        assert!(Config::from_yaml("bogus: 1\n", Path::new("x.yml")).is_err());
    }

    #[test]
    fn empty_file_is_default() {
        assert_eq!(
            Config::from_yaml("", Path::new("x")).unwrap(),
            Config::default()
        );
    }
}
