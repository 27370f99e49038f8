//! The seam between alert evaluation and template rendering.
//!
//! Alert labels and annotations are templates rendered per alert with `$labels`, `$value` and a
//! `query` function. [`AlertTemplater`] is the interface evaluation calls; [`BasicTemplater`] is a
//! small built-in renderer (`{{ $labels.x }}`, `{{ $value }}`, `{{ $externalLabels.x }}`,
//! `{{ $externalURL }}` and their `.Labels` / `.Value` forms); [`GoTemplater`] (the default) runs
//! the full Go-template engine of `crate::template`, as Prometheus renders alert templates.

use std::collections::BTreeMap;

use crate::model::{Labels, SampleValue};

/// The per-alert data a template sees.
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    /// The result sample's labels (`$labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// The result sample's value (`$value`).
    pub value: &'a SampleValue,
}

/// One sample returned by a template's `query` call.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// Series labels.
    pub labels: Labels,
    /// Sample value.
    pub value: SampleValue,
}

/// Runs a query for a template at a given time (the rule evaluation's engine and store).
pub trait RuleQuery: Sync {
    /// Evaluates `q` at `t_ms`; the error is the message to show in the rendered text.
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<QuerySample>, String>;
}

/// Renders alert label and annotation templates; implementations never fail (errors are rendered
/// into the text, as Prometheus renders `<error expanding template: ...>`).
pub trait AlertTemplater: Send + Sync + std::fmt::Debug {
    /// Renders `tmpl` for the alert `name` at evaluation time `t_ms`.
    fn expand(
        &self,
        name: &str,
        tmpl: &str,
        input: &TemplateInput<'_>,
        query: Option<&dyn RuleQuery>,
        t_ms: i64,
    ) -> String;
}

/// Renders with `crate::template` (Go templates, Prometheus' functions, `query`), naming the
/// template `__alert_<name>` and rendering failures as `<error expanding template: ...>`.
#[derive(Debug, Clone, Default)]
pub struct GoTemplater {
    /// `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL`.
    pub external_url: String,
}

/// Lets the template engine's `query` call the rule evaluation's engine and store.
struct QueryBridge<'a>(&'a dyn RuleQuery);

impl crate::template::QueryFn for QueryBridge<'_> {
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<crate::template::QuerySample>, String> {
        Ok(self
            .0
            .query(q, t_ms)?
            .into_iter()
            .filter_map(|s| match s.value {
                SampleValue::Float(f) => Some(crate::template::QuerySample {
                    labels: s
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect(),
                    value: f,
                }),
                SampleValue::Str(_) => None,
            })
            .collect())
    }
}

impl AlertTemplater for GoTemplater {
    fn expand(
        &self,
        name: &str,
        tmpl: &str,
        input: &TemplateInput<'_>,
        query: Option<&dyn RuleQuery>,
        t_ms: i64,
    ) -> String {
        use crate::template::{AlertTemplateData, TemplateValue, expand_alert_or_error};
        let data = AlertTemplateData {
            labels: input.labels.clone(),
            value: match input.value {
                SampleValue::Float(f) => TemplateValue::Float(*f),
                SampleValue::Str(s) => TemplateValue::Str(s.to_string()),
            },
            external_labels: self.external_labels.clone(),
            external_url: self.external_url.clone(),
        };
        let bridge = query.map(QueryBridge);
        expand_alert_or_error(
            &format!("__alert_{name}"),
            tmpl,
            &data,
            bridge.as_ref().map(|b| b as &dyn crate::template::QueryFn),
            t_ms,
        )
    }
}

/// A minimal renderer of variable references only; anything else is left as written.
#[derive(Debug, Clone, Default)]
pub struct BasicTemplater {
    /// `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL`.
    pub external_url: String,
}

impl BasicTemplater {
    fn lookup(&self, expr: &str, input: &TemplateInput<'_>) -> Option<String> {
        let e = expr.trim();
        let label = |prefix: &str, map: &BTreeMap<String, String>| -> Option<String> {
            e.strip_prefix(prefix)
                .map(|n| map.get(n).cloned().unwrap_or_default())
        };
        if e == "$value" || e == ".Value" {
            return Some(match input.value {
                SampleValue::Float(f) => crate::expr::format_number(*f),
                SampleValue::Str(s) => s.to_string(),
            });
        }
        if e == "$externalURL" || e == ".ExternalURL" {
            return Some(self.external_url.clone());
        }
        label("$labels.", input.labels)
            .or_else(|| label(".Labels.", input.labels))
            .or_else(|| label("$externalLabels.", &self.external_labels))
            .or_else(|| label(".ExternalLabels.", &self.external_labels))
    }
}

impl AlertTemplater for BasicTemplater {
    fn expand(
        &self,
        _name: &str,
        tmpl: &str,
        input: &TemplateInput<'_>,
        _query: Option<&dyn RuleQuery>,
        _t_ms: i64,
    ) -> String {
        let mut out = String::with_capacity(tmpl.len());
        let mut rest = tmpl;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = after[..end].trim_start_matches('-').trim_end_matches('-');
            match self.lookup(inner, input) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[start..start + 2 + end + 2]),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables() {
        let labels: BTreeMap<String, String> = [("instance".to_string(), "a:1".to_string())].into();
        let v = SampleValue::Float(0.5);
        let input = TemplateInput {
            labels: &labels,
            value: &v,
        };
        let t = BasicTemplater::default();
        assert_eq!(
            t.expand(
                "x",
                "{{ $labels.instance }} is {{$value}} {{ $labels.none }}!{{ if }}",
                &input,
                None,
                0
            ),
            "a:1 is 0.5 !{{ if }}"
        );
    }
}
