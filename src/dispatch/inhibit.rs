//! Inhibition (Alertmanager's `inhibit/inhibit.go`): a firing alert matching a rule's `source`
//! mutes alerts matching its `target` when the `equal` labels have the same values in both (a
//! label missing on both sides counts as equal). When the target also matches the source side,
//! source alerts that match the target side are ignored, so an alert never inhibits itself.
//!
//! Built from the alert store at each evaluation, so it always knows every source alert the
//! store knows, including those restored from a snapshot.

use std::collections::HashMap;

use super::alert::{Alert, Fingerprint};
use crate::config::route::CompiledInhibitRule;
use crate::model::{Labels, Matcher};

/// A firing source alert as one rule sees it.
#[derive(Debug, Clone)]
struct Source {
    fp: Fingerprint,
    matches_target: bool,
}

/// One rule with its firing source alerts indexed by their `equal` label values.
#[derive(Debug, Clone)]
struct RuleIndex {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
    sources: HashMap<Vec<String>, Vec<Source>>,
}

fn matches_all(ms: &[Matcher], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches_labels(labels))
}

fn key(equal: &[String], labels: &Labels) -> Vec<String> {
    equal
        .iter()
        .map(|n| labels.get(n).unwrap_or("").to_string())
        .collect()
}

/// The inhibition rules over the alerts firing at one instant.
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<RuleIndex>,
}

impl Inhibitor {
    /// Indexes the alerts of `alerts` that fire at `now` and match a rule's source side.
    pub fn new<'a>(
        rules: &[CompiledInhibitRule],
        alerts: impl IntoIterator<Item = &'a Alert>,
        now: i64,
    ) -> Self {
        let mut idx: Vec<RuleIndex> = rules
            .iter()
            .map(|r| RuleIndex {
                source: r.source.clone(),
                target: r.target.clone(),
                equal: r.equal.clone(),
                sources: HashMap::new(),
            })
            .collect();
        if idx.is_empty() {
            return Inhibitor { rules: idx };
        }
        for a in alerts {
            if a.resolved_at(now) {
                continue;
            }
            for r in &mut idx {
                if matches_all(&r.source, &a.labels) {
                    r.sources
                        .entry(key(&r.equal, &a.labels))
                        .or_default()
                        .push(Source {
                            fp: a.fingerprint(),
                            matches_target: matches_all(&r.target, &a.labels),
                        });
                }
            }
        }
        Inhibitor { rules: idx }
    }

    /// Fingerprints of the alerts inhibiting `labels` (empty when it is not inhibited), sorted.
    pub fn inhibited_by(&self, labels: &Labels) -> Vec<Fingerprint> {
        let mut out = Vec::new();
        for r in &self.rules {
            if !matches_all(&r.target, labels) {
                continue;
            }
            let two_sided = matches_all(&r.source, labels);
            if let Some(srcs) = r.sources.get(&key(&r.equal, labels)) {
                out.extend(
                    srcs.iter()
                        .filter(|s| !(two_sided && s.matches_target))
                        .map(|s| s.fp),
                );
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    fn alert(pairs: &[(&str, &str)], ends: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: Labels::empty(),
            starts_at: 0,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
        }
    }

    fn rule(src: &str, tgt: &str, equal: &[&str]) -> CompiledInhibitRule {
        CompiledInhibitRule {
            source: vec![Matcher::new(MatchOp::Equal, "severity", src).unwrap()],
            target: vec![Matcher::new(MatchOp::Equal, "severity", tgt).unwrap()],
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn equal_labels_must_match() {
        let crit = alert(&[("severity", "critical"), ("cluster", "a")], 0);
        let resolved = alert(&[("severity", "critical"), ("cluster", "c")], 5);
        let inh = Inhibitor::new(
            &[rule("critical", "warning", &["cluster"])],
            [&crit, &resolved],
            10,
        );
        let warn_a = Labels::from_pairs([("severity", "warning"), ("cluster", "a")]);
        let warn_b = Labels::from_pairs([("severity", "warning"), ("cluster", "b")]);
        let warn_c = Labels::from_pairs([("severity", "warning"), ("cluster", "c")]);
        assert_eq!(inh.inhibited_by(&warn_a), vec![crit.fingerprint()]);
        assert!(inh.inhibited_by(&warn_b).is_empty());
        assert!(
            inh.inhibited_by(&warn_c).is_empty(),
            "resolved sources do not inhibit"
        );
    }

    #[test]
    fn an_alert_matching_both_sides_does_not_inhibit_itself() {
        let r = CompiledInhibitRule {
            source: vec![Matcher::new(MatchOp::Equal, "alertname", "X").unwrap()],
            target: vec![Matcher::new(MatchOp::Equal, "alertname", "X").unwrap()],
            equal: vec![],
        };
        let x = alert(&[("alertname", "X")], 0);
        let inh = Inhibitor::new(&[r], [&x], 10);
        assert!(inh.inhibited_by(&x.labels).is_empty());
    }
}
