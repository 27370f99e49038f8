//! Incidents: correlation beyond `group_by`, so one broken database pages once with its
//! symptoms attached instead of every dependent service paging on its own.
//!
//! Pure function of the firing alerts, no IO. Relations (edges of an undirected graph whose
//! connected components, found with petgraph's union-find, are the incidents):
//!
//! - **Shared label.** Two alerts carrying the same value of any `correlation.labels` label
//!   (e.g. `instance="db-1"`) are related.
//! - **Declared cause.** Alert X is caused by alert Y when a rule says
//!   `depends_on: [name of Y]` for X's `alertname` and the two do not contradict each other on the
//!   correlation labels: they share a value of one of them, or no correlation label is present
//!   on both (so a global `database_connection_failed` without `instance` is the cause of every
//!   `api_errors{instance=...}`, while `instance="web-1"` and `instance="web-2"` stay apart).
//!   With no correlation labels configured, every firing Y causes every firing X. A rule that
//!   names itself in `depends_on` is ignored.
//!
//! Only components with at least two members are incidents. The root is chosen among members
//! not caused by another member (all members, when a `depends_on` cycle leaves none); among
//! those, a member whose `alertname` is the declared cause of another member comes first, then
//! the earliest `starts_at`, then the smallest fingerprint. Every other member is a symptom.
//!
//! Cost is O(n) in the firing alerts plus the number of distinct (alertname, set of correlation
//! labels present) classes squared per `depends_on` pair: alerts are bucketed by label value
//! and by class instead of compared pairwise.

use std::collections::{BTreeSet, HashMap};

use petgraph::unionfind::UnionFind;

use super::alert::{Alert, Fingerprint};
use crate::config::delivery::CorrelationConfig;
use crate::telemetry::time::format_rfc3339_ms;

/// Most reasons listed per incident, so one incident over a thousand instances stays readable.
pub const MAX_REASONS: usize = 20;

/// One incident: related firing alerts with the root that pages for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Stable identifier: the root's fingerprint as 16 hex digits.
    pub id: String,
    /// The alert whose notification carries the others.
    pub root: Fingerprint,
    /// Every member, root included, sorted.
    pub members: Vec<Fingerprint>,
    /// Members whose own paging is folded into the root's, sorted.
    pub symptoms: Vec<Fingerprint>,
    /// Earliest `starts_at` among the members (ms).
    pub started_ms: i64,
    /// Why the members belong together, e.g. `instance=db-1`,
    /// `api_errors depends_on database_connection_failed`; sorted, at most [`MAX_REASONS`].
    pub reasons: Vec<String>,
}

impl Incident {
    /// The API shape; members missing from `alerts` are shown by fingerprint only.
    pub fn to_json(&self, alerts: &HashMap<Fingerprint, &Alert>) -> serde_json::Value {
        let alert_json = |fp: &Fingerprint| match alerts.get(fp) {
            Some(a) => serde_json::json!({
                "fingerprint": fp.to_string(),
                "labels": a.labels.to_json(),
                "startsAt": format_rfc3339_ms(a.starts_at),
            }),
            None => serde_json::json!({ "fingerprint": fp.to_string() }),
        };
        serde_json::json!({
            "id": self.id,
            "root": alert_json(&self.root),
            "members": self.members.iter().map(alert_json).collect::<Vec<_>>(),
            "symptoms": self.symptoms.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "startedAt": format_rfc3339_ms(self.started_ms),
            "reasons": self.reasons,
        })
    }
}

/// Which correlation labels an alert carries, as a bitset over `cfg.labels`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Mask(Vec<u64>);

impl Mask {
    fn new(bits: usize) -> Self {
        Mask(vec![0; bits.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn disjoint(&self, other: &Mask) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == 0)
    }
}

/// The alerts of one alertname that carry exactly the same correlation labels: every pair
/// across two such classes is related the same way.
struct Class {
    members: Vec<usize>,
    /// Whether the members were already unioned with each other.
    collapsed: bool,
}

/// Per-alert facts the passes share.
struct Node<'a> {
    fp: Fingerprint,
    alert: &'a Alert,
    name: &'a str,
    /// `(label index, value)` of each correlation label present.
    corr: Vec<(usize, &'a str)>,
}

/// Groups firing alerts into incidents (see the module docs for the rules).
pub fn incidents(
    firing: &[&Alert],
    cfg: &CorrelationConfig,
    depends_on: &HashMap<String, Vec<String>>,
) -> Vec<Incident> {
    // Correlation labels, de-duplicated, in configured order.
    let mut corr_labels: Vec<&str> = Vec::new();
    for l in &cfg.labels {
        if !l.is_empty() && !corr_labels.contains(&l.as_str()) {
            corr_labels.push(l);
        }
    }

    // One node per fingerprint; a duplicate keeps the earliest start.
    let mut nodes: Vec<Node<'_>> = Vec::with_capacity(firing.len());
    let mut index: HashMap<Fingerprint, usize> = HashMap::with_capacity(firing.len());
    for &a in firing {
        let fp = a.fingerprint();
        if let Some(&i) = index.get(&fp) {
            if a.starts_at < nodes[i].alert.starts_at {
                nodes[i].alert = a;
            }
            continue;
        }
        let corr = corr_labels
            .iter()
            .enumerate()
            .filter_map(|(li, l)| a.labels.get(l).map(|v| (li, v)))
            .collect();
        index.insert(fp, nodes.len());
        nodes.push(Node {
            fp,
            alert: a,
            name: a.name(),
            corr,
        });
    }
    let n = nodes.len();
    if n < 2 {
        return Vec::new();
    }
    let mut uf = UnionFind::<usize>::new(n);

    // Shared label values: union each (label, value) bucket into its first member.
    let mut buckets: HashMap<(usize, &str), (usize, usize)> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for &(li, v) in &node.corr {
            let b = buckets.entry((li, v)).or_insert((i, 0));
            b.1 += 1;
            uf.union(b.0, i);
        }
    }

    // Declared causes, restricted to names that fire.
    let mut causes_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (x, ys) in depends_on {
        let mut v: Vec<&str> = Vec::new();
        for y in ys {
            if y != x && !v.contains(&y.as_str()) {
                v.push(y);
            }
        }
        if !v.is_empty() {
            causes_of.insert(x, v);
        }
    }
    let mut firing_names: HashMap<&str, HashMap<Mask, Class>> = HashMap::new();
    let mut shared_by_name: HashMap<(usize, &str, &str), usize> = HashMap::new();
    if !causes_of.is_empty() {
        let involved: BTreeSet<&str> = causes_of
            .iter()
            .flat_map(|(x, ys)| std::iter::once(*x).chain(ys.iter().copied()))
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            if !involved.contains(node.name) {
                continue;
            }
            let mut mask = Mask::new(corr_labels.len());
            for &(li, v) in &node.corr {
                mask.set(li);
                *shared_by_name.entry((li, v, node.name)).or_insert(0) += 1;
            }
            firing_names
                .entry(node.name)
                .or_default()
                .entry(mask)
                .or_insert_with(|| Class {
                    members: Vec::new(),
                    collapsed: false,
                })
                .members
                .push(i);
        }
    }

    let mut caused = vec![false; n];
    // (member, cause alertname) pairs, for reasons and root preference.
    let mut cause_links: Vec<(usize, &str)> = Vec::new();
    let mut x_names: Vec<&str> = causes_of.keys().copied().collect();
    x_names.sort_unstable();
    for x in x_names {
        if !firing_names.contains_key(x) {
            continue;
        }
        for &y in &causes_of[x] {
            if !firing_names.contains_key(y) {
                continue;
            }
            // Pairs whose correlation label sets are disjoint: related class by class.
            let x_masks: Vec<Mask> = firing_names[x].keys().cloned().collect();
            let y_masks: Vec<Mask> = firing_names[y].keys().cloned().collect();
            for mx in &x_masks {
                for my in &y_masks {
                    if !mx.disjoint(my) {
                        continue;
                    }
                    let rx = collapse(&mut uf, firing_names.get_mut(x), mx);
                    let ry = collapse(&mut uf, firing_names.get_mut(y), my);
                    if let (Some(rx), Some(ry)) = (rx, ry) {
                        uf.union(rx, ry);
                    }
                    for &i in &firing_names[x][mx].members {
                        if cause_links.last() != Some(&(i, y)) {
                            cause_links.push((i, y));
                        }
                        caused[i] = true;
                    }
                }
            }
            // Pairs sharing a value: already connected by their bucket; mark the direction.
            for class in firing_names[x].values() {
                for &i in &class.members {
                    let shares = nodes[i]
                        .corr
                        .iter()
                        .any(|&(li, v)| shared_by_name.get(&(li, v, y)).copied().unwrap_or(0) > 0);
                    if shares {
                        caused[i] = true;
                        cause_links.push((i, y));
                    }
                }
            }
        }
    }

    // Components.
    let labeling = uf.into_labeling();
    let mut comps: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &c) in labeling.iter().enumerate() {
        comps.entry(c).or_default().push(i);
    }
    comps.retain(|_, m| m.len() >= 2);

    let mut reasons: HashMap<usize, BTreeSet<String>> = HashMap::new();
    let mut cause_names: HashMap<usize, BTreeSet<&str>> = HashMap::new();
    for ((li, v), (first, count)) in &buckets {
        if *count >= 2 {
            reasons
                .entry(labeling[*first])
                .or_default()
                .insert(format!("{}={}", corr_labels[*li], v));
        }
    }
    for &(i, y) in &cause_links {
        let c = labeling[i];
        reasons
            .entry(c)
            .or_default()
            .insert(format!("{} depends_on {}", nodes[i].name, y));
        cause_names.entry(c).or_default().insert(y);
    }

    let mut out: Vec<Incident> = comps
        .into_iter()
        .map(|(c, members)| {
            let is_cause = |i: usize| {
                cause_names
                    .get(&c)
                    .is_some_and(|names| names.contains(nodes[i].name))
            };
            let rank = |i: usize| (!is_cause(i), nodes[i].alert.starts_at, nodes[i].fp);
            let root = members
                .iter()
                .copied()
                .filter(|&i| !caused[i])
                .min_by_key(|&i| rank(i))
                .or_else(|| members.iter().copied().min_by_key(|&i| rank(i)))
                .unwrap_or(members[0]);
            let mut fps: Vec<Fingerprint> = members.iter().map(|&i| nodes[i].fp).collect();
            fps.sort_unstable();
            let root_fp = nodes[root].fp;
            let symptoms = fps.iter().copied().filter(|&f| f != root_fp).collect();
            let started_ms = members
                .iter()
                .map(|&i| nodes[i].alert.starts_at)
                .min()
                .unwrap_or(0);
            let all: Vec<String> = reasons.remove(&c).unwrap_or_default().into_iter().collect();
            Incident {
                id: root_fp.to_string(),
                root: root_fp,
                members: fps,
                symptoms,
                started_ms,
                reasons: cap_reasons(all),
            }
        })
        .collect();
    out.sort_by(|a, b| (a.started_ms, &a.id).cmp(&(b.started_ms, &b.id)));
    out
}

/// Unions a class's members once and returns its representative.
fn collapse(
    uf: &mut UnionFind<usize>,
    classes: Option<&mut HashMap<Mask, Class>>,
    mask: &Mask,
) -> Option<usize> {
    let class = classes?.get_mut(mask)?;
    let first = *class.members.first()?;
    if !class.collapsed {
        for &m in &class.members[1..] {
            uf.union(first, m);
        }
        class.collapsed = true;
    }
    Some(first)
}

/// Keeps the first [`MAX_REASONS`] - 1 reasons and a count of the rest.
fn cap_reasons(mut all: Vec<String>) -> Vec<String> {
    if all.len() > MAX_REASONS {
        let rest = all.len() - (MAX_REASONS - 1);
        all.truncate(MAX_REASONS - 1);
        all.push(format!("and {rest} more"));
    }
    all
}

/// Symptom → root, so the dispatcher can fold a symptom's paging into its root's notification.
pub fn symptom_roots(incidents: &[Incident]) -> HashMap<Fingerprint, Fingerprint> {
    incidents
        .iter()
        .flat_map(|inc| inc.symptoms.iter().map(move |&s| (s, inc.root)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::delivery::Dur;
    use crate::model::Labels;

    fn alert(pairs: &[(&str, &str)], starts: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: Labels::empty(),
            starts_at: starts,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: starts,
            timeout: false,
        }
    }

    fn cfg(labels: &[&str]) -> CorrelationConfig {
        CorrelationConfig {
            labels: labels.iter().map(|s| s.to_string()).collect(),
            hold: Dur(0),
        }
    }

    fn deps(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(x, ys)| (x.to_string(), ys.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn sorted(mut v: Vec<Fingerprint>) -> Vec<Fingerprint> {
        v.sort();
        v
    }

    #[test]
    fn shared_instance_is_one_incident_rooted_at_the_earliest() {
        let disk = alert(&[("alertname", "DiskFull"), ("instance", "db-1")], 200);
        let cpu = alert(&[("alertname", "HighCPU"), ("instance", "db-1")], 100);
        let other = alert(&[("alertname", "HighCPU"), ("instance", "web-1")], 50);
        let inc = incidents(&[&disk, &cpu, &other], &cfg(&["instance"]), &HashMap::new());
        assert_eq!(inc.len(), 1);
        let i = &inc[0];
        assert_eq!(i.root, cpu.fingerprint());
        assert_eq!(i.id, cpu.fingerprint().to_string());
        assert_eq!(
            i.members,
            sorted(vec![disk.fingerprint(), cpu.fingerprint()])
        );
        assert_eq!(i.symptoms, vec![disk.fingerprint()]);
        assert_eq!(i.started_ms, 100);
        assert_eq!(i.reasons, vec!["instance=db-1"]);
        let roots = symptom_roots(&inc);
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[&disk.fingerprint()], cpu.fingerprint());
    }

    #[test]
    fn depends_on_chain_without_correlation_labels() {
        // A depends on B, B depends on C: C is the root even though it started last.
        let a = alert(&[("alertname", "A")], 10);
        let b = alert(&[("alertname", "B")], 20);
        let c = alert(&[("alertname", "C")], 30);
        let d = deps(&[("A", &["B"]), ("B", &["C"])]);
        for labels in [&[][..], &["instance"][..]] {
            let inc = incidents(&[&a, &b, &c], &cfg(labels), &d);
            assert_eq!(inc.len(), 1, "labels {labels:?}");
            assert_eq!(inc[0].root, c.fingerprint());
            assert_eq!(
                inc[0].symptoms,
                sorted(vec![a.fingerprint(), b.fingerprint()])
            );
            assert_eq!(inc[0].started_ms, 10);
            assert_eq!(inc[0].reasons, vec!["A depends_on B", "B depends_on C"]);
        }
    }

    #[test]
    fn global_cause_absorbs_instance_symptoms() {
        let db = alert(&[("alertname", "database_connection_failed")], 100);
        let w1 = alert(&[("alertname", "api_errors"), ("instance", "web-1")], 50);
        let w2 = alert(&[("alertname", "api_errors"), ("instance", "web-2")], 60);
        // An unrelated alert on web-1 that started earliest: the declared cause still wins.
        let lat = alert(&[("alertname", "high_latency"), ("instance", "web-1")], 10);
        let d = deps(&[("api_errors", &["database_connection_failed"])]);
        let inc = incidents(&[&db, &w1, &w2, &lat], &cfg(&["instance"]), &d);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].root, db.fingerprint());
        assert_eq!(inc[0].members.len(), 4);
        assert_eq!(
            inc[0].reasons,
            vec![
                "api_errors depends_on database_connection_failed",
                "instance=web-1"
            ]
        );
    }

    #[test]
    fn cause_on_another_instance_does_not_correlate() {
        let db = alert(&[("alertname", "db_down"), ("instance", "db-1")], 0);
        let api = alert(&[("alertname", "api_errors"), ("instance", "web-1")], 0);
        let d = deps(&[("api_errors", &["db_down"])]);
        assert!(incidents(&[&db, &api], &cfg(&["instance"]), &d).is_empty());
        // Same instance: related, and the dependency decides the root despite a later start.
        let db = alert(&[("alertname", "db_down"), ("instance", "web-1")], 9);
        let inc = incidents(&[&db, &api], &cfg(&["instance"]), &d);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].root, db.fingerprint());
    }

    #[test]
    fn unrelated_alerts_form_no_incident() {
        let a = alert(&[("alertname", "A"), ("instance", "x")], 0);
        let b = alert(&[("alertname", "B"), ("job", "y")], 0);
        assert!(incidents(&[&a, &b], &cfg(&["instance"]), &HashMap::new()).is_empty());
        assert!(incidents(&[&a, &b], &cfg(&[]), &HashMap::new()).is_empty());
        assert!(incidents(&[&a], &cfg(&["instance"]), &HashMap::new()).is_empty());
        assert!(incidents(&[], &cfg(&["instance"]), &HashMap::new()).is_empty());
    }

    #[test]
    fn different_values_do_not_correlate() {
        let a = alert(&[("alertname", "A"), ("instance", "x")], 0);
        let b = alert(&[("alertname", "A"), ("instance", "y")], 0);
        assert!(incidents(&[&a, &b], &cfg(&["instance"]), &HashMap::new()).is_empty());
    }

    #[test]
    fn depends_on_cycle_terminates_and_picks_earliest() {
        let a = alert(&[("alertname", "A")], 20);
        let b = alert(&[("alertname", "B")], 10);
        let d = deps(&[("A", &["B"]), ("B", &["A"]), ("C", &["C"])]);
        let c = alert(&[("alertname", "C")], 0);
        let c2 = alert(&[("alertname", "C"), ("x", "1")], 0);
        let inc = incidents(&[&a, &b, &c, &c2], &cfg(&[]), &d);
        assert_eq!(inc.len(), 1, "self-dependency ignored: {inc:?}");
        assert_eq!(inc[0].root, b.fingerprint());
    }

    #[test]
    fn tie_breaks_on_smallest_fingerprint_and_ids_are_stable() {
        let a = alert(&[("alertname", "A"), ("instance", "i")], 5);
        let b = alert(&[("alertname", "B"), ("instance", "i")], 5);
        let c = alert(&[("alertname", "C"), ("instance", "i")], 5);
        let first = incidents(&[&a, &b, &c], &cfg(&["instance"]), &HashMap::new());
        let min = [a.fingerprint(), b.fingerprint(), c.fingerprint()]
            .into_iter()
            .min()
            .unwrap();
        assert_eq!(first[0].root, min);
        for order in [[&c, &b, &a], [&b, &a, &c], [&a, &a, &c]] {
            let again = incidents(&order, &cfg(&["instance"]), &HashMap::new());
            if order[1] == order[0] {
                // Duplicates collapse; a and c still share the instance.
                assert_eq!(again[0].members.len(), 2);
            } else {
                assert_eq!(again, first);
            }
        }
    }

    #[test]
    fn multiple_labels_and_components() {
        let a = alert(&[("alertname", "A"), ("instance", "i1")], 1);
        let b = alert(
            &[("alertname", "B"), ("instance", "i1"), ("cluster", "c1")],
            2,
        );
        let c = alert(&[("alertname", "C"), ("cluster", "c1")], 3);
        let d = alert(&[("alertname", "D"), ("cluster", "c2")], 4);
        let e = alert(&[("alertname", "E"), ("cluster", "c2")], 5);
        let inc = incidents(
            &[&a, &b, &c, &d, &e],
            &cfg(&["instance", "cluster", "instance"]),
            &HashMap::new(),
        );
        assert_eq!(inc.len(), 2);
        assert_eq!(inc[0].root, a.fingerprint());
        assert_eq!(inc[0].members.len(), 3);
        assert_eq!(inc[0].reasons, vec!["cluster=c1", "instance=i1"]);
        assert_eq!(inc[1].root, d.fingerprint());
    }

    #[test]
    fn json_shape() {
        let db = alert(&[("alertname", "db"), ("instance", "x")], 1_705_314_645_123);
        let api = alert(
            &[("alertname", "api"), ("instance", "x")],
            1_705_314_645_124,
        );
        let inc = incidents(&[&db, &api], &cfg(&["instance"]), &HashMap::new());
        let map: HashMap<Fingerprint, &Alert> =
            [(db.fingerprint(), &db), (api.fingerprint(), &api)].into();
        let j = inc[0].to_json(&map);
        assert_eq!(j["id"], db.fingerprint().to_string());
        assert_eq!(j["root"]["labels"]["alertname"], "db");
        assert_eq!(j["root"]["startsAt"], "2024-01-15T10:30:45.123Z");
        assert_eq!(j["members"].as_array().unwrap().len(), 2);
        assert_eq!(j["symptoms"][0], api.fingerprint().to_string());
        assert_eq!(j["startedAt"], "2024-01-15T10:30:45.123Z");
        assert_eq!(j["reasons"][0], "instance=x");
        let bare = inc[0].to_json(&HashMap::new());
        assert!(bare["root"].get("labels").is_none());
    }

    #[test]
    fn reasons_are_capped() {
        // 30 pairs sharing `a=i`, all tied together by `x=same`: 31 reasons.
        let linked: Vec<Alert> = (0..30)
            .map(|i| {
                alert(
                    &[("alertname", "C"), ("x", "same"), ("a", &i.to_string())],
                    i,
                )
            })
            .collect();
        let extra: Vec<Alert> = (0..30)
            .map(|i| alert(&[("alertname", "B"), ("a", &i.to_string())], 100))
            .collect();
        let mut refs: Vec<&Alert> = linked.iter().collect();
        refs.extend(extra.iter());
        assert_eq!(incidents(&refs, &cfg(&["a"]), &HashMap::new()).len(), 30);
        let inc = incidents(&refs, &cfg(&["a", "x"]), &HashMap::new());
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].reasons.len(), MAX_REASONS);
        assert_eq!(inc[0].reasons.last().unwrap(), "and 12 more");
    }

    #[test]
    fn ten_thousand_alerts() {
        // 2,000 instances, each with 4 symptoms; 500 "api_errors" per instance-less cause; a
        // global database alert everything of api_errors hangs off.
        let mut alerts = Vec::new();
        for i in 0..2_000 {
            let inst = format!("host-{i}");
            for (k, name) in ["cpu", "mem", "disk", "net"].iter().enumerate() {
                alerts.push(alert(
                    &[("alertname", name), ("instance", &inst)],
                    (i * 10 + k) as i64,
                ));
            }
        }
        for i in 0..1_999 {
            alerts.push(alert(
                &[
                    ("alertname", "api_errors"),
                    ("service", &format!("svc-{i}")),
                ],
                1_000_000,
            ));
        }
        alerts.push(alert(
            &[("alertname", "database_connection_failed")],
            2_000_000,
        ));
        assert_eq!(alerts.len(), 10_000);
        let refs: Vec<&Alert> = alerts.iter().collect();
        let d = deps(&[("api_errors", &["database_connection_failed"])]);
        let started = std::time::Instant::now();
        let inc = incidents(&refs, &cfg(&["instance"]), &d);
        let took = started.elapsed();
        assert_eq!(inc.len(), 2_001);
        let db = inc
            .iter()
            .find(|i| i.members.len() == 2_000)
            .expect("database incident");
        assert_eq!(db.root, alerts[9_999].fingerprint());
        assert_eq!(db.symptoms.len(), 1_999);
        for i in inc.iter().filter(|i| i.members.len() == 4) {
            assert_eq!(i.reasons.len(), 1);
            assert!(i.reasons[0].starts_with("instance=host-"));
        }
        let host0 = &inc[0];
        assert_eq!(host0.root, alerts[0].fingerprint());
        assert_eq!(symptom_roots(&inc).len(), 2_000 * 3 + 1_999);
        // Generous bound for unoptimised debug test builds on a shared machine.
        assert!(took.as_secs() < 5, "took {took:?}");
    }
}
