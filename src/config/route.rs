//! The compiled routing tree, inhibition rules and time intervals.
//!
//! Routing is Alertmanager's: options inherit from the parent (receiver, grouping, timers and
//! klaxon's escalation; `continue`, matchers and mute/active time intervals do not), matching is
//! depth-first, and route and group keys are rendered exactly as Alertmanager renders them so
//! notification-log entries and webhook `groupKey`s look the same.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::delivery::{InhibitRule, Route};
use super::matchers::{parse_matchers, regex_error};
use super::timeinterval::CompiledInterval;
use crate::model::{Labels, MatchOp, Matcher, is_legacy_label_name, quote};

/// `group_by` of a route.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    /// `['...']`: every label.
    All,
    /// These labels (possibly none: one group for the route).
    Labels(Vec<String>),
}

/// One compiled route with inherited options resolved.
#[derive(Debug, Clone)]
pub struct RouteNode {
    /// Index in `RouteTree::nodes`.
    pub id: usize,
    /// Parent index; `None` for the root.
    pub parent: Option<usize>,
    /// Children, in configuration order.
    pub children: Vec<usize>,
    /// Receiver (inherited when not set).
    pub receiver: String,
    /// Grouping (inherited).
    pub group_by: GroupBy,
    /// ms (inherited; default 30s).
    pub group_wait_ms: i64,
    /// ms (inherited; default 5m).
    pub group_interval_ms: i64,
    /// ms (inherited; default 4h).
    pub repeat_interval_ms: i64,
    /// All of `match`, `match_re` and `matchers`, compiled, sorted as Alertmanager sorts them.
    pub matchers: Vec<Matcher>,
    /// Keep matching siblings.
    pub continue_matching: bool,
    /// Muted during these named intervals (not inherited, as in Alertmanager).
    pub mute_time_intervals: Vec<String>,
    /// Active only during these named intervals (not inherited).
    pub active_time_intervals: Vec<String>,
    /// Escalation policy (inherited).
    pub escalation: Option<String>,
    /// Alertmanager's route key (`{}/{service=~"^(?:foo)$"}`...) used in group keys.
    pub key: String,
    /// Route labels for notification templates (inherited; a child overrides by name).
    pub labels: BTreeMap<String, String>,
    /// YAML path of the route (`route.routes[1]`), for messages.
    pub path: String,
}

/// The routing tree.
#[derive(Debug, Clone)]
pub struct RouteTree {
    /// Nodes in depth-first order; `nodes[0]` is the root.
    pub nodes: Vec<RouteNode>,
}

impl RouteTree {
    /// The root node.
    pub fn root(&self) -> &RouteNode {
        &self.nodes[0]
    }

    /// Alertmanager's `Route.Match`: the routes an alert with `labels` ends at, in match order.
    pub fn match_alert(&self, labels: &Labels) -> Vec<&RouteNode> {
        let mut out = Vec::new();
        self.match_node(0, labels, &mut out);
        out
    }

    fn match_node<'a>(&'a self, id: usize, labels: &Labels, out: &mut Vec<&'a RouteNode>) -> bool {
        let node = &self.nodes[id];
        if !node.matchers.iter().all(|m| m.matches_labels(labels)) {
            return false;
        }
        let before = out.len();
        for &child in &node.children {
            if self.match_node(child, labels, out) && !self.nodes[child].continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(node);
        }
        true
    }

    /// The receiver names an alert reaches, in match order (duplicates kept, as `amtool config
    /// routes test` prints them).
    pub fn receivers_for(&self, labels: &Labels) -> Vec<String> {
        self.match_alert(labels)
            .into_iter()
            .map(|n| n.receiver.clone())
            .collect()
    }
}

/// Alertmanager's group key: the route key, `:`, and the group labels as `{a="b", c="d"}`.
pub fn group_key(node: &RouteNode, group_labels: &Labels) -> String {
    let mut s = String::with_capacity(node.key.len() + 32);
    s.push_str(&node.key);
    s.push_str(":{");
    for (i, l) in group_labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&l.name);
        s.push('=');
        s.push_str(&quote(&l.value));
    }
    s.push('}');
    s
}

/// Why a `name=value` label argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelArgError {
    /// Not matcher syntax.
    #[error("failed to parse labels: {0}")]
    Parse(#[from] super::matchers::MatcherParseError),
    /// `a!=b`, `a=~b`.
    #[error("labels must be specified as key=value pairs: {0:?}")]
    NotEquality(String),
}

/// Builds an alert's labels from `name=value` arguments (amtool's label syntax).
pub fn labels_from_args(args: &[String]) -> Result<Labels, LabelArgError> {
    let mut pairs = Vec::with_capacity(args.len());
    for a in args {
        let m = super::matchers::parse_matcher(a)?;
        if m.op != MatchOp::Equal {
            return Err(LabelArgError::NotEquality(a.clone()));
        }
        pairs.push((m.name, m.value));
    }
    Ok(Labels::from_pairs(pairs))
}

/// An inhibition rule with compiled matchers.
#[derive(Debug, Clone)]
pub struct CompiledInhibitRule {
    /// A firing alert matching all of these...
    pub source: Vec<Matcher>,
    /// ...mutes alerts matching all of these...
    pub target: Vec<Matcher>,
    /// ...when these labels have equal values in both.
    pub equal: Vec<String>,
}

/// A named list of time ranges, ready to test a timestamp.
#[derive(Debug, Clone)]
pub struct CompiledTimeIntervals {
    /// Name.
    pub name: String,
    /// The ranges; the set contains a time when any range does.
    pub intervals: Vec<CompiledInterval>,
}

impl CompiledTimeIntervals {
    /// True when `t_ms` falls in any of the ranges.
    pub fn contains(&self, t_ms: i64) -> bool {
        self.intervals.iter().any(|i| i.contains(t_ms))
    }
}

/// A validation problem at a YAML path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub path: String,
    pub message: String,
}

pub(crate) fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// Names a route may refer to.
pub(crate) struct RouteRefs<'a> {
    pub receivers: &'a dyn Fn(&str) -> bool,
    pub intervals: &'a HashMap<String, CompiledTimeIntervals>,
    pub escalations: &'a HashSet<String>,
}

const DEFAULT_GROUP_WAIT_MS: i64 = 30_000;
const DEFAULT_GROUP_INTERVAL_MS: i64 = 5 * 60_000;
const DEFAULT_REPEAT_INTERVAL_MS: i64 = 4 * 3_600_000;

/// Compiles and validates the routing tree.
pub(crate) fn compile_tree(root: &Route, refs: &RouteRefs<'_>) -> Result<RouteTree, Problem> {
    let path = "route";
    if root.receiver.as_deref().is_none_or(str::is_empty) {
        return Err(problem(path, "root route must specify a default receiver"));
    }
    if !root.match_eq.is_empty() || !root.match_re.is_empty() || !root.matchers.is_empty() {
        return Err(problem(path, "root route must not have any matchers"));
    }
    if root.continue_matching {
        return Err(problem(path, "cannot have continue in root route"));
    }
    if !root.mute_time_intervals.is_empty() {
        return Err(problem(
            format!("{path}.mute_time_intervals"),
            "root route must not have any mute time intervals",
        ));
    }
    if !root.active_time_intervals.is_empty() {
        return Err(problem(
            format!("{path}.active_time_intervals"),
            "root route must not have any active time intervals",
        ));
    }
    let mut tree = RouteTree { nodes: Vec::new() };
    compile_node(root, None, path.to_string(), refs, &mut tree)?;
    Ok(tree)
}

fn compile_node(
    r: &Route,
    parent: Option<usize>,
    path: String,
    refs: &RouteRefs<'_>,
    tree: &mut RouteTree,
) -> Result<usize, Problem> {
    let p = parent.map(|i| tree.nodes[i].clone());
    let receiver = match r.receiver.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => {
            if !(refs.receivers)(name) {
                return Err(problem(
                    format!("{path}.receiver"),
                    format!("undefined receiver {name:?} used in route"),
                ));
            }
            name.to_string()
        }
        None => p.as_ref().map(|p| p.receiver.clone()).unwrap_or_default(),
    };
    let group_by = match &r.group_by {
        Some(list) => compile_group_by(list, &format!("{path}.group_by"))?,
        None => p
            .as_ref()
            .map_or(GroupBy::Labels(Vec::new()), |p| p.group_by.clone()),
    };
    let timer = |v: Option<super::delivery::Dur>, inherited: Option<i64>, default: i64| {
        v.map(|d| d.ms()).or(inherited).unwrap_or(default)
    };
    let group_wait_ms = timer(
        r.group_wait,
        p.as_ref().map(|p| p.group_wait_ms),
        DEFAULT_GROUP_WAIT_MS,
    );
    let group_interval_ms = timer(
        r.group_interval,
        p.as_ref().map(|p| p.group_interval_ms),
        DEFAULT_GROUP_INTERVAL_MS,
    );
    let repeat_interval_ms = timer(
        r.repeat_interval,
        p.as_ref().map(|p| p.repeat_interval_ms),
        DEFAULT_REPEAT_INTERVAL_MS,
    );
    if group_interval_ms == 0 {
        return Err(problem(
            format!("{path}.group_interval"),
            "group_interval cannot be zero",
        ));
    }
    if repeat_interval_ms == 0 {
        return Err(problem(
            format!("{path}.repeat_interval"),
            "repeat_interval cannot be zero",
        ));
    }
    let matchers = compile_matchers(
        &r.match_eq,
        &r.match_re,
        &r.matchers,
        &path,
        ("match", "match_re", "matchers"),
    )?;
    for (field, names) in [
        ("mute_time_intervals", &r.mute_time_intervals),
        ("active_time_intervals", &r.active_time_intervals),
    ] {
        for (i, n) in names.iter().enumerate() {
            if !refs.intervals.contains_key(n) {
                return Err(problem(
                    format!("{path}.{field}[{i}]"),
                    format!("undefined time interval {n:?} used in route"),
                ));
            }
        }
    }
    let escalation = match r.escalation.as_deref().filter(|s| !s.is_empty()) {
        Some(e) => {
            if !refs.escalations.contains(e) {
                return Err(problem(
                    format!("{path}.escalation"),
                    format!("undefined escalation policy {e:?} used in route"),
                ));
            }
            Some(e.to_string())
        }
        None => p.as_ref().and_then(|p| p.escalation.clone()),
    };
    let mut labels = p.as_ref().map(|p| p.labels.clone()).unwrap_or_default();
    labels.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let own_key = format!(
        "{{{}}}",
        matchers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let key = match &p {
        Some(p) => format!("{}/{own_key}", p.key),
        None => own_key,
    };
    let id = tree.nodes.len();
    tree.nodes.push(RouteNode {
        id,
        parent,
        children: Vec::new(),
        receiver,
        group_by,
        group_wait_ms,
        group_interval_ms,
        repeat_interval_ms,
        matchers,
        continue_matching: r.continue_matching,
        mute_time_intervals: r.mute_time_intervals.clone(),
        active_time_intervals: r.active_time_intervals.clone(),
        escalation,
        key,
        labels,
        path: path.clone(),
    });
    for (i, child) in r.routes.iter().enumerate() {
        let c = compile_node(child, Some(id), format!("{path}.routes[{i}]"), refs, tree)?;
        tree.nodes[id].children.push(c);
    }
    Ok(id)
}

fn compile_group_by(list: &[String], path: &str) -> Result<GroupBy, Problem> {
    if list.iter().any(|l| l == "...") {
        if list.len() > 1 {
            return Err(problem(
                path,
                "cannot have wildcard group_by (`...`) and other labels at the same time",
            ));
        }
        return Ok(GroupBy::All);
    }
    let mut seen = HashSet::new();
    for (i, l) in list.iter().enumerate() {
        if !is_legacy_label_name(l) {
            return Err(problem(
                format!("{path}[{i}]"),
                format!("invalid label name {l:?} in group_by list"),
            ));
        }
        if !seen.insert(l.as_str()) {
            return Err(problem(
                format!("{path}[{i}]"),
                format!("duplicated label {l:?} in group_by"),
            ));
        }
    }
    Ok(GroupBy::Labels(list.to_vec()))
}

/// Legacy equality and regex maps plus matcher strings, as one sorted list.
pub(crate) fn compile_matchers(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, Option<String>>,
    strings: &[String],
    path: &str,
    fields: (&str, &str, &str),
) -> Result<Vec<Matcher>, Problem> {
    let (f_eq, f_re, f_str) = fields;
    let mut out = Vec::new();
    for (name, value) in eq {
        let at = format!("{path}.{f_eq}.{name}");
        if !is_legacy_label_name(name) {
            return Err(problem(at, format!("invalid label name {name:?}")));
        }
        out.push(
            Matcher::new(MatchOp::Equal, name.clone(), value.clone())
                .map_err(|e| problem(at, regex_error(&e)))?,
        );
    }
    for (name, value) in re {
        let at = format!("{path}.{f_re}.{name}");
        if !is_legacy_label_name(name) {
            return Err(problem(at, format!("invalid label name {name:?}")));
        }
        let Some(value) = value else {
            return Err(problem(
                at,
                format!("invalid regexp value for {name:?}: the value is null"),
            ));
        };
        // Alertmanager stores the anchored form, which is what route keys show.
        out.push(
            Matcher::new(MatchOp::Regex, name.clone(), format!("^(?:{value})$"))
                .map_err(|e| problem(at, regex_error(&e)))?,
        );
    }
    for (i, s) in strings.iter().enumerate() {
        let at = format!("{path}.{f_str}[{i}]");
        out.extend(parse_matchers(s).map_err(|e| problem(at, e.to_string()))?);
    }
    sort_matchers(&mut out);
    Ok(out)
}

/// Alertmanager's `labels.Matchers` order: name, then value, then operator.
fn sort_matchers(m: &mut [Matcher]) {
    let rank = |op: MatchOp| match op {
        MatchOp::Equal => 0,
        MatchOp::NotEqual => 1,
        MatchOp::Regex => 2,
        MatchOp::NotRegex => 3,
    };
    m.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.value.cmp(&b.value))
            .then_with(|| rank(a.op).cmp(&rank(b.op)))
    });
}

/// Compiles one inhibition rule at `path`.
pub(crate) fn compile_inhibit_rule(
    r: &InhibitRule,
    path: &str,
) -> Result<CompiledInhibitRule, Problem> {
    let source = compile_matchers(
        &r.source_match,
        &r.source_match_re,
        &r.source_matchers,
        path,
        ("source_match", "source_match_re", "source_matchers"),
    )?;
    let target = compile_matchers(
        &r.target_match,
        &r.target_match_re,
        &r.target_matchers,
        path,
        ("target_match", "target_match_re", "target_matchers"),
    )?;
    for (i, l) in r.equal.iter().enumerate() {
        if !is_legacy_label_name(l) {
            return Err(problem(
                format!("{path}.equal[{i}]"),
                format!("invalid label name {l:?}"),
            ));
        }
    }
    Ok(CompiledInhibitRule {
        source,
        target,
        equal: r.equal.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str, receivers: &[&str]) -> Result<RouteTree, Problem> {
        let node = crate::config::yaml::parse(yaml).unwrap().unwrap();
        let r: Route = crate::config::yaml::from_node(&node).unwrap();
        let names: Vec<String> = receivers.iter().map(|s| s.to_string()).collect();
        let exists = move |n: &str| names.iter().any(|r| r == n);
        compile_tree(
            &r,
            &RouteRefs {
                receivers: &exists,
                intervals: &HashMap::new(),
                escalations: &HashSet::from(["esc".to_string()]),
            },
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    const SIMPLE: &str = r#"
receiver: default
group_by: [alertname]
escalation: esc
routes:
  - match_re: {test: '^[12]$'}
    receiver: a
    continue: true
    group_wait: 10s
    routes:
      - matchers: ['sev="crit"']
        receiver: b
  - match: {test: 2}
    receiver: c
    group_by: ['...']
"#;

    #[test]
    fn inheritance_and_keys() {
        let t = tree(SIMPLE, &["default", "a", "b", "c"]).unwrap();
        assert_eq!(t.nodes.len(), 4);
        let root = t.root();
        assert_eq!(root.key, "{}");
        assert_eq!(root.group_wait_ms, 30_000);
        assert_eq!(root.repeat_interval_ms, 4 * 3_600_000);
        let a = &t.nodes[1];
        assert_eq!(a.key, r#"{}/{test=~"^(?:^[12]$)$"}"#);
        assert_eq!(a.group_wait_ms, 10_000);
        assert_eq!(a.group_by, GroupBy::Labels(vec!["alertname".into()]));
        assert_eq!(a.escalation.as_deref(), Some("esc"));
        let b = &t.nodes[2];
        assert_eq!(b.key, r#"{}/{test=~"^(?:^[12]$)$"}/{sev="crit"}"#);
        assert_eq!(b.group_wait_ms, 10_000, "inherited from the parent");
        assert!(!b.continue_matching, "continue is not inherited");
        assert_eq!(t.nodes[3].group_by, GroupBy::All);
        assert_eq!(t.nodes[3].key, r#"{}/{test="2"}"#);
    }

    #[test]
    fn matching_follows_alertmanager() {
        let t = tree(SIMPLE, &["default", "a", "b", "c"]).unwrap();
        let r = |l: &[(&str, &str)]| t.receivers_for(&labels(l)).join(",");
        assert_eq!(r(&[("test", "1")]), "a");
        assert_eq!(r(&[("test", "2")]), "a,c");
        assert_eq!(r(&[("test", "2"), ("sev", "crit")]), "b,c");
        assert_eq!(r(&[("test", "3")]), "default");
    }

    #[test]
    fn group_keys() {
        let t = tree(SIMPLE, &["default", "a", "b", "c"]).unwrap();
        let gl = labels(&[("cluster", "eu"), ("alertname", "Down")]);
        assert_eq!(
            group_key(t.root(), &gl),
            r#"{}:{alertname="Down", cluster="eu"}"#
        );
        assert_eq!(group_key(t.root(), &Labels::empty()), "{}:{}");
    }

    #[test]
    fn validation() {
        let e = |y: &str| tree(y, &["default", "a"]).unwrap_err();
        assert_eq!(
            e("receiver: nope\n").message,
            "undefined receiver \"nope\" used in route"
        );
        assert_eq!(e("group_by: [a]\n").path, "route");
        assert!(
            e("receiver: a\nmatch: {x: y}\n")
                .message
                .contains("root route must not have any matchers")
        );
        let p = e("receiver: a\nroutes: [{match_re: {bad_label: null}}]\n");
        assert_eq!(p.path, "route.routes[0].match_re.bad_label");
        assert!(p.message.contains("null"), "{p:?}");
        let p = e("receiver: a\ngroup_by: ['...', a]\n");
        assert!(p.message.contains("wildcard"), "{p:?}");
        let p = e("receiver: a\ngroup_by: [a, a]\n");
        assert_eq!(p.path, "route.group_by[1]");
        let p = e("receiver: a\ngroup_by: ['a-b']\n");
        assert!(p.message.contains("invalid label name"), "{p:?}");
        let p = e("receiver: a\nroutes: [{group_interval: 0s}]\n");
        assert_eq!(p.path, "route.routes[0].group_interval");
        let p = e("receiver: a\nroutes: [{matchers: ['a=~(']}]\n");
        assert_eq!(p.path, "route.routes[0].matchers[0]");
        let p = e("receiver: a\nroutes: [{mute_time_intervals: [night]}]\n");
        assert!(p.message.contains("undefined time interval"), "{p:?}");
        let p = e("receiver: a\nroutes: [{escalation: nope}]\n");
        assert!(p.message.contains("undefined escalation policy"), "{p:?}");
        let p = e("receiver: a\ncontinue: true\n");
        assert!(p.message.contains("continue"), "{p:?}");
    }
}
