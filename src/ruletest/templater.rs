//! Alert templates rendered with the full Go-template engine (`crate::template`), with
//! `$externalLabels`, `$externalURL` and a `query` function over the test's own store.
//!
//! `GroupOptions` only offers the variable-only `BasicTemplater`; this adapter renders what
//! Prometheus renders (`humanize`, `printf`, `query`, ...). The `query` function runs against the
//! store held here rather than the `RuleQuery` handed in, because the template engine needs a
//! `Send + Sync` query callback.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::alert::{AlertTemplater, RuleQuery, TemplateInput};
use crate::eval::{Engine, Value};
use crate::model::SampleValue;
use crate::store::Store;
use crate::template::{AlertTemplateData, QueryFn, QuerySample, TemplateValue};

/// Renders alert labels and annotations as Prometheus does, for one test group.
pub struct TestTemplater {
    /// The test group's store (queries from templates read it).
    pub store: Arc<Store>,
    /// The query engine.
    pub engine: Engine,
    /// `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL`.
    pub external_url: String,
}

impl std::fmt::Debug for TestTemplater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTemplater")
            .field("external_labels", &self.external_labels)
            .field("external_url", &self.external_url)
            .finish_non_exhaustive()
    }
}

impl QueryFn for TestTemplater {
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<QuerySample>, String> {
        let expr = crate::expr::parse_and_check(q).map_err(|d| d.to_string())?;
        let out = self
            .engine
            .instant(self.store.as_ref(), &expr, t_ms)
            .map_err(|e| e.to_string())?;
        let float = |v: &SampleValue| match v {
            SampleValue::Float(f) => *f,
            SampleValue::Str(_) => f64::NAN,
        };
        match out.value {
            Value::Vector(v) => Ok(v
                .iter()
                .map(|s| QuerySample {
                    labels: s
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect(),
                    value: float(&s.value),
                })
                .collect()),
            Value::Scalar(f) => Ok(vec![QuerySample {
                labels: BTreeMap::new(),
                value: f,
            }]),
            _ => Err("query result is not a vector or scalar".to_string()),
        }
    }
}

impl AlertTemplater for TestTemplater {
    fn expand(
        &self,
        name: &str,
        tmpl: &str,
        input: &TemplateInput<'_>,
        _query: Option<&dyn RuleQuery>,
        t_ms: i64,
    ) -> String {
        let data = AlertTemplateData {
            labels: input.labels.clone(),
            value: match input.value {
                SampleValue::Float(f) => TemplateValue::Float(*f),
                SampleValue::Str(s) => TemplateValue::Str(s.to_string()),
            },
            external_labels: self.external_labels.clone(),
            external_url: self.external_url.clone(),
        };
        crate::template::expand_alert_or_error(
            &format!("__alert_{name}"),
            tmpl,
            &data,
            Some(self),
            t_ms,
        )
    }
}
