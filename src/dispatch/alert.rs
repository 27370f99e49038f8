//! The alert as delivery sees it (Alertmanager's model): a label set with annotations and a
//! lifetime, identified by the Prometheus label-set fingerprint.

use crate::model::Labels;

/// Identity of an alert: FNV-1a over its sorted labels, exactly as Prometheus'
/// `model.LabelSet.Fingerprint`, so IDs match what Alertmanager and amtool show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Fingerprint)
    }
}

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
const FNV_PRIME: u64 = 1_099_511_628_211;
const SEPARATOR: u8 = 0xff;

fn fnv_add(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Prometheus' label-set fingerprint: for each label in name order, name, 0xff, value, 0xff.
pub fn fingerprint(labels: &Labels) -> Fingerprint {
    let mut h = FNV_OFFSET;
    for l in labels.iter() {
        h = fnv_add(h, l.name.as_bytes());
        h = fnv_add(h, &[SEPARATOR]);
        h = fnv_add(h, l.value.as_bytes());
        h = fnv_add(h, &[SEPARATOR]);
    }
    Fingerprint(h)
}

/// One alert instance. Times are ms since the epoch; `ends_at == 0` means "not set".
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels (include `alertname`).
    pub labels: Labels,
    /// Non-identifying annotations (summary, description, runbook...).
    pub annotations: Labels,
    /// When the alert started firing.
    pub starts_at: i64,
    /// When it resolves or resolved; 0 when unknown.
    pub ends_at: i64,
    /// Link back to the source (rule expression graph).
    pub generator_url: String,
    /// When klaxon last received it.
    pub updated_at: i64,
    /// `ends_at` was filled in from `resolve_timeout`, not by the sender.
    pub timeout: bool,
}

impl Alert {
    /// The alert's identity.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.labels)
    }

    /// The value of `alertname`, or "" when absent.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or("")
    }

    /// Resolved as of `now`: `ends_at` is set and not after `now`.
    pub fn resolved_at(&self, now: i64) -> bool {
        self.ends_at != 0 && self.ends_at <= now
    }

    /// Alertmanager's merge of a repeated post: the newer update wins, the earliest start is
    /// kept, and an explicit end time is not shortened by a timeout-derived one.
    pub fn merge(&self, other: &Alert, now: i64) -> Alert {
        if other.updated_at < self.updated_at {
            return other.merge(self, now);
        }
        let (older, newer) = (self, other);
        let mut res = newer.clone();
        if older.starts_at < newer.starts_at {
            res.starts_at = older.starts_at;
        }
        if newer.resolved_at(now) {
            if older.resolved_at(now) && older.ends_at > newer.ends_at {
                res.ends_at = older.ends_at;
            }
        } else if older.ends_at > newer.ends_at && !older.timeout {
            res.ends_at = older.ends_at;
        }
        res
    }
}

/// Delivery settings a rule declares for its alerts, looked up by `alertname`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleMeta {
    /// `channels: [email, slack]`: receivers built from the config's `channels:` section.
    pub channels: Vec<String>,
    /// `escalation: NAME`.
    pub escalation: Option<String>,
    /// `depends_on: [alertname]`: causes whose firing makes this alert a symptom.
    pub depends_on: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_label_set_is_the_fnv_offset() {
        assert_eq!(fingerprint(&Labels::empty()).0, FNV_OFFSET);
    }

    #[test]
    fn fingerprint_matches_prometheus() {
        // The published value for this label set in Prometheus' model fingerprint tests.
        let l = Labels::from_pairs([("name", "garland, briggs"), ("fear", "love is not enough")]);
        assert_eq!(fingerprint(&l).0, 5_799_056_148_416_392_346);
        let l = Labels::from_pairs([("name", "value"), ("a", "b")]);
        assert_ne!(
            fingerprint(&l),
            fingerprint(&Labels::from_pairs([("name", "value")]))
        );
    }

    fn a(starts: i64, ends: i64, updated: i64, timeout: bool) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "x")]),
            annotations: Labels::empty(),
            starts_at: starts,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: updated,
            timeout,
        }
    }

    #[test]
    fn merge_keeps_earliest_start_and_explicit_end() {
        let old = a(100, 1_000, 10, false);
        let new = a(200, 500, 20, true);
        let m = old.merge(&new, 50);
        assert_eq!(m.starts_at, 100);
        assert_eq!(m.ends_at, 1_000, "explicit later end beats a timeout end");
        let m2 = new.merge(&old, 50);
        assert_eq!(m2, m, "merge is symmetric in argument order");
    }

    #[test]
    fn merge_resolved_latest_end_wins() {
        let old = a(100, 300, 10, false);
        let new = a(100, 200, 20, false);
        assert_eq!(old.merge(&new, 1_000).ends_at, 300);
    }
}
