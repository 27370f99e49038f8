//! The rule dependency graph: which rules read the output of which recording rules.
//!
//! Used by `klaxon check --graph`, for cycle detection (a recording rule that, through other
//! recording rules, reads its own output never converges) and for "reads a rule evaluated later"
//! warnings.

use std::collections::VecDeque;
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::model::{Rule, RuleSet};
use crate::expr::{Expr, VectorSelector};
use crate::model::METRIC_NAME;

/// One rule in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleNode {
    /// Index of the group in `RuleSet::groups`.
    pub group: usize,
    /// Index of the rule in its group.
    pub rule: usize,
    /// Alert name or recorded metric name.
    pub name: String,
    /// Whether the rule is a recording rule.
    pub recording: bool,
}

/// Rules as nodes, an edge from each recording rule to every rule whose expression selects its
/// output name.
#[derive(Debug, Clone, Default)]
pub struct RuleGraph {
    /// The petgraph graph; node weights identify the rules.
    pub graph: DiGraph<RuleNode, ()>,
}

/// Builds the dependency graph of a rule set.
///
/// Selectors without a metric-name matcher (`{job="x"}`) could read anything; they are left out
/// rather than making every rule depend on every recording rule.
pub fn dependency_graph(set: &RuleSet) -> RuleGraph {
    let mut graph = DiGraph::new();
    let mut nodes: Vec<(NodeIndex, &Rule)> = Vec::new();
    for (gi, g) in set.groups.iter().enumerate() {
        for (ri, r) in g.rules.iter().enumerate() {
            let idx = graph.add_node(RuleNode {
                group: gi,
                rule: ri,
                name: r.name().to_string(),
                recording: matches!(r, Rule::Recording(_)),
            });
            nodes.push((idx, r));
        }
    }
    for &(reader, rule) in &nodes {
        let mut selectors = Vec::new();
        collect_selectors(rule.expr(), &mut selectors);
        for &(producer, prule) in &nodes {
            let Rule::Recording(rec) = prule else {
                continue;
            };
            if selectors.iter().any(|s| selects(s, &rec.record)) {
                graph.add_edge(producer, reader, ());
            }
        }
    }
    RuleGraph { graph }
}

fn collect_selectors<'e>(e: &'e Expr, out: &mut Vec<&'e VectorSelector>) {
    match e {
        Expr::Number { .. } | Expr::String { .. } => {}
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector { selector, .. } => out.push(selector),
        Expr::Subquery { expr, .. } | Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => {
            collect_selectors(expr, out)
        }
        Expr::Binary { lhs, rhs, .. } => {
            collect_selectors(lhs, out);
            collect_selectors(rhs, out);
        }
        Expr::Aggregate { expr, param, .. } => {
            collect_selectors(expr, out);
            if let Some(p) = param {
                collect_selectors(p, out);
            }
        }
        Expr::Call { args, .. } => {
            for a in args {
                collect_selectors(a, out);
            }
        }
    }
}

/// Whether the selector's metric-name matchers (at least one) all accept `name`.
fn selects(vs: &VectorSelector, name: &str) -> bool {
    let mut any = false;
    for m in vs.matchers.iter().filter(|m| m.name == METRIC_NAME) {
        any = true;
        if !m.matches(name) {
            return false;
        }
    }
    any
}

impl RuleGraph {
    /// Each edge as (producer name, reader name), in node order.
    pub fn edges(&self) -> Vec<(String, String)> {
        let mut out: Vec<(usize, usize, String, String)> = self
            .graph
            .edge_references()
            .map(|e| {
                (
                    e.source().index(),
                    e.target().index(),
                    self.graph[e.source()].name.clone(),
                    self.graph[e.target()].name.clone(),
                )
            })
            .collect();
        out.sort();
        out.dedup();
        out.into_iter().map(|(_, _, a, b)| (a, b)).collect()
    }

    /// One `producer -> reader` line per edge.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (a, b) in self.edges() {
            let _ = writeln!(out, "{a} -> {b}");
        }
        out
    }

    /// The graph in Graphviz DOT; recording rules are boxes, alerts ellipses.
    pub fn dot(&self) -> String {
        let mut out = String::from("digraph rules {\n");
        for i in self.graph.node_indices() {
            let n = &self.graph[i];
            let shape = if n.recording { "box" } else { "ellipse" };
            let _ = writeln!(out, "  n{} [label={:?}, shape={shape}];", i.index(), n.name);
        }
        let mut edges: Vec<(usize, usize)> = self
            .graph
            .edge_references()
            .map(|e| (e.source().index(), e.target().index()))
            .collect();
        edges.sort_unstable();
        edges.dedup();
        for (a, b) in edges {
            let _ = writeln!(out, "  n{a} -> n{b};");
        }
        out.push_str("}\n");
        out
    }

    /// Every dependency cycle, each as node indices `[a, b, ..., a]` starting at its first node.
    pub fn cycles(&self) -> Vec<Vec<NodeIndex>> {
        let mut out = Vec::new();
        for mut scc in tarjan_scc(&self.graph) {
            scc.sort();
            let start = scc[0];
            let self_loop = self.graph.contains_edge(start, start);
            if scc.len() == 1 && !self_loop {
                continue;
            }
            if self_loop {
                out.push(vec![start, start]);
                continue;
            }
            if let Some(path) = self.path_back(start, &scc) {
                out.push(path);
            }
        }
        out.sort();
        out
    }

    /// Shortest path from `start` back to itself inside one strongly connected component.
    fn path_back(&self, start: NodeIndex, scc: &[NodeIndex]) -> Option<Vec<NodeIndex>> {
        let mut prev: std::collections::HashMap<NodeIndex, NodeIndex> = Default::default();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for next in self.graph.neighbors(n) {
                if !scc.contains(&next) {
                    continue;
                }
                if next == start {
                    let mut path = vec![start, n];
                    let mut cur = n;
                    while cur != start {
                        cur = *prev.get(&cur)?;
                        path.push(cur);
                    }
                    path.reverse();
                    return Some(path);
                }
                if next != start && !prev.contains_key(&next) {
                    prev.insert(next, n);
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// A cycle spelled out by rule names: `a -> b -> a`.
    pub fn spell(&self, cycle: &[NodeIndex]) -> String {
        cycle
            .iter()
            .map(|i| self.graph[*i].name.as_str())
            .collect::<Vec<_>>()
            .join(" -> ")
    }
}
