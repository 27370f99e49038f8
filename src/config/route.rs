//! The compiled routing tree, inhibition rules and time intervals.
//!
//! OWNER: config helper (in progress). Signatures here are the contract dispatch relies on.

use crate::model::{Labels, Matcher};

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
    /// All of `match`, `match_re` and `matchers`, compiled.
    pub matchers: Vec<Matcher>,
    /// Keep matching siblings.
    pub continue_matching: bool,
    /// Muted during these named intervals (not inherited, as in Alertmanager... check).
    pub mute_time_intervals: Vec<String>,
    /// Active only during these named intervals.
    pub active_time_intervals: Vec<String>,
    /// Escalation policy (inherited).
    pub escalation: Option<String>,
    /// Alertmanager's route key (`{}/{service=~"^(?:foo)$"}`...) used in group keys.
    pub key: String,
}

/// The routing tree.
#[derive(Debug, Clone)]
pub struct RouteTree {
    /// Nodes; `nodes[0]` is the root.
    pub nodes: Vec<RouteNode>,
}

impl RouteTree {
    /// The root node.
    pub fn root(&self) -> &RouteNode {
        &self.nodes[0]
    }

    /// Alertmanager's `Route.Match`: the routes an alert with `labels` ends at, in match order.
    pub fn match_alert(&self, labels: &Labels) -> Vec<&RouteNode> {
        let _ = labels;
        todo!("config helper")
    }
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
}

impl CompiledTimeIntervals {
    /// True when `t_ms` falls in any of the ranges.
    pub fn contains(&self, t_ms: i64) -> bool {
        let _ = t_ms;
        todo!("config helper")
    }
}
