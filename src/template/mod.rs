//! Go `text/template` expansion for alert labels and annotations, with Prometheus' functions.
//!
//! Alert label and annotation values are Go templates exactly as in Prometheus rule files
//! (`{{ $labels.instance }}`, `{{ $value | humanize }}`, `{{ printf "%.2f" $value }}`,
//! `{{ range query "up" }}...{{ end }}`). Later the delivery work reuses the same engine
//! ([`parse_template`] / [`execute_template`] with its own [`Functions`]) for notifications.
//!
//! # Why an own interpreter and not a crate
//!
//! Evaluated (issue requirement): `gotmpl` 0.6.1 (maintained, MSRV 1.89, no `unsafe`, full
//! syntax, parse errors with `name:line:col`, recursion and `range` budgets, no panics on the bad
//! inputs tried: `{{`, `{{ .Foo`, `{{ range }}`, 100k nested `{{if}}`/parens, recursive `define`)
//! and `gtmpl` 0.7.1 (edition 2018, `thiserror` 1, badge "passively-maintained", older).
//! `gotmpl` was close, but rejected for alerting because:
//! - **Float printing is Rust's, not Go's**: `{{ $value }}` of 1e6 renders `1000000` where
//!   Prometheus renders `1e+06`; `+Inf` renders `inf`. `$value` printing is the most common
//!   alert template, so outputs would differ from Prometheus for large/small values.
//! - `printf` diverges on type mismatches (`printf "%d" 1.5` gives `1`, Go gives
//!   `%!d(float64=1.5)`).
//! - Functions must be `'static` closures, so the borrowed `&dyn QueryFn` (the rule engine)
//!   cannot be captured without `unsafe` or a helper thread per expansion.
//! - Unknown functions are only reported at execution time, so `klaxon check` could not catch
//!   `{{ humanise $value }}` the way `promtool` does (Go rejects it at parse time), and runtime
//!   errors lack Go's `name:line:col: executing ... at <...>` prefix that Prometheus shows.
//! - Its parser is more lenient than Go's: it accepts `{{ if 1 }}x` without `{{end}}` and a
//!   stray `{{end}}`/`{{else}}`, which Prometheus (and `klaxon check`) must reject.
//! - No output-size limit.
//!
//! So this module is a compact interpreter for the subset Prometheus users write: text, actions
//! with `-` trim markers, comments, pipelines, fields/`$var`/`index`, `:=`/`=`,
//! `if/else if/else/with/else with/range (else, break, continue)/end`, `define/template/block`,
//! Go's builtins (`and or not len index slice print printf println html js urlquery eq ne lt le
//! gt ge`) and Prometheus' functions. It never panics and renders errors with Go's/Prometheus'
//! wording.
//!
//! # Limits
//!
//! Parsing caps nesting at 100 levels. Execution ([`Limits`]) caps output at 1 MiB (also any
//! single string result), evaluation at 1M steps (a node, a command, a `range` iteration; a
//! `query` costs 10k steps, regex functions 100, building strings 1 step per 64 bytes), and
//! control/`{{template}}` nesting at 200. Exceeding a limit is an execution error, never a hang.

mod exec;
mod funcs;
mod gofmt;
mod parse;
mod value;

use std::collections::BTreeMap;

pub use exec::{BUILTINS, FuncError, Functions, Limits, html_escape};
pub use funcs::{
    PROM_FUNCS, PromFunctions, format_go_time_ms, humanize, humanize_duration, humanize_percentage,
    humanize1024,
};
pub use gofmt::{format_g, sprintf};
pub use parse::Tree;
pub use value::{Methods, Object, Struct, Value};

/// Definitions Prometheus prepends to every alert label/annotation template.
pub const ALERT_TEMPLATE_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// The alert's value as seen by templates (`$value`, `.Value`).
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    /// A float sample value (the usual case).
    Float(f64),
    /// A pre-rendered value (e.g. a native histogram's string form).
    Str(String),
}

/// The data an alert template sees (Prometheus' `tmplData`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTemplateData {
    /// The alert's labels (`$labels`, `.Labels`).
    pub labels: BTreeMap<String, String>,
    /// The alert's value (`$value`, `.Value`).
    pub value: TemplateValue,
    /// Configured external labels (`$externalLabels`).
    pub external_labels: BTreeMap<String, String>,
    /// Configured external URL (`$externalURL`).
    pub external_url: String,
}

/// One sample returned by the `query` template function.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// The series labels (including `__name__` when present).
    pub labels: BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
}

/// Callback into the query engine for the `query` template function.
pub trait QueryFn: Send + Sync {
    /// Evaluates instant query `q` at `t_ms` (ms since the epoch).
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<QuerySample>, String>;
}

/// A template failure, rendered exactly like Prometheus' `Expander.Expand` errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse.
    #[error("error parsing template {name}: template: {name}:{line}: {msg}")]
    Parse {
        /// Template name (e.g. `__alert_HighCPU`).
        name: String,
        /// 1-based line.
        line: usize,
        /// Go's message.
        msg: String,
    },
    /// Execution failed (bad call, type error, function error, or a resource limit).
    #[error(
        "error executing template {name}: template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {msg}"
    )]
    Exec {
        /// Template name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 0-based byte offset in the line (as Go reports it).
        col: usize,
        /// The command being executed.
        context: String,
        /// Go's message.
        msg: String,
    },
}

struct FnNames<'a>(&'a dyn Functions);

impl FnNames<'_> {
    fn has(&self, n: &str) -> bool {
        BUILTINS.contains(&n) || self.0.has(n)
    }
}

/// Parses `text` as template `name`, resolving function names against `funcs` and Go's builtins.
pub fn parse_template(
    name: &str,
    text: &str,
    funcs: &dyn Functions,
) -> Result<Tree, TemplateError> {
    let names = FnNames(funcs);
    parse::parse(name, text, &|n: &str| names.has(n)).map_err(|e| TemplateError::Parse {
        name: name.to_string(),
        line: e.line,
        msg: e.msg,
    })
}

/// Executes a parsed template against `data` within `limits`.
pub fn execute_template(
    tree: &Tree,
    data: &Value,
    funcs: &dyn Functions,
    limits: Limits,
) -> Result<String, TemplateError> {
    exec::execute(tree, data, funcs, limits).map_err(|e| {
        let (line, col) = tree.line_col(e.pos);
        TemplateError::Exec {
            name: tree.name.clone(),
            line,
            col,
            context: e.context.replace('%', "%%"),
            msg: e.msg,
        }
    })
}

/// The template data value for an alert (`.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`).
pub fn alert_data_value(data: &AlertTemplateData) -> Value {
    Value::new_struct(
        "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }",
        vec![
            ("Labels", Value::string_map(&data.labels)),
            ("ExternalLabels", Value::string_map(&data.external_labels)),
            ("ExternalURL", Value::str(data.external_url.as_str())),
            (
                "Value",
                match &data.value {
                    TemplateValue::Float(f) => Value::Float(*f),
                    TemplateValue::Str(s) => Value::str(s.as_str()),
                },
            ),
        ],
    )
}

/// Expands an alert label/annotation template the way Prometheus does (defs prepended).
pub fn expand_alert(
    name: &str,
    tmpl: &str,
    data: &AlertTemplateData,
    query: Option<&dyn QueryFn>,
    t_ms: i64,
) -> Result<String, TemplateError> {
    // Fast path: no action at all.
    if !tmpl.contains("{{") {
        return Ok(tmpl.to_string());
    }
    let funcs = PromFunctions::new(query, t_ms, &data.external_url);
    let text = format!("{ALERT_TEMPLATE_DEFS}{tmpl}");
    let tree = parse_template(name, &text, &funcs)?;
    execute_template(&tree, &alert_data_value(data), &funcs, Limits::default())
}

/// Like [`expand_alert`], but renders failures as Prometheus does: `<error expanding template: ...>`.
pub fn expand_alert_or_error(
    name: &str,
    tmpl: &str,
    data: &AlertTemplateData,
    query: Option<&dyn QueryFn>,
    t_ms: i64,
) -> String {
    match expand_alert(name, tmpl, data, query, t_ms) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(template = name, err = %e, "expanding alert template failed");
            format!("<error expanding template: {e}>")
        }
    }
}

/// Checks that an alert template parses (for `klaxon check`), as Prometheus' rule validation does.
pub fn check_syntax(tmpl: &str) -> Result<(), TemplateError> {
    check_alert_syntax("__alert_", tmpl)
}

/// [`check_syntax`] with the template named after the alert (`__alert_<name>`) in errors.
pub fn check_alert_syntax(name: &str, tmpl: &str) -> Result<(), TemplateError> {
    let funcs = PromFunctions::new(None, 0, "");
    parse_template(name, &format!("{ALERT_TEMPLATE_DEFS}{tmpl}"), &funcs).map(|_| ())
}

#[cfg(test)]
mod tests;
