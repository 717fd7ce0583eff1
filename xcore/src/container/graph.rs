//! The graph of services and plugins, and its waves (Kahn's algorithm).

use std::{collections::HashMap, fmt, sync::Arc};

use xcore_manifest::{Requirement, Version};

/// Whether a node is a service or a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// A service: database, cache, scheduler, worker, event bus, or a host extension.
    Service,
    /// A plugin.
    Plugin,
}

/// A node of the graph: its kind and its name. Services and plugins have separate namespaces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    kind: NodeKind,
    name: Arc<str>,
}

impl NodeId {
    pub(crate) fn new(kind: NodeKind, name: &str) -> Self {
        Self {
            kind,
            name: Arc::from(name),
        }
    }

    /// A service node.
    pub fn service(name: &str) -> Self {
        Self::new(NodeKind::Service, name)
    }

    /// A plugin node.
    pub fn plugin(name: &str) -> Self {
        Self::new(NodeKind::Plugin, name)
    }

    /// Service or plugin.
    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            NodeKind::Service => write!(f, "service `{}`", self.name),
            NodeKind::Plugin => write!(f, "plugin `{}`", self.name),
        }
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a node cannot be part of the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The node depends on a node that does not exist.
    #[error("unknown dependency `{name}` (no {kind} of that name)", kind = kind_word(*.kind))]
    UnknownDependency {
        /// The missing node's name.
        name: String,
        /// Whether a service or a plugin was expected.
        kind: NodeKind,
    },
    /// A required plugin's version does not satisfy the constraint.
    #[error("requires `{requirement}`, but `{name}` is version {found}", name = .requirement.name())]
    VersionMismatch {
        /// The requirement as written.
        requirement: Requirement,
        /// The version present.
        found: Version,
    },
    /// The node is part of a dependency cycle.
    #[error("dependency cycle: {}", .path.join(" -> "))]
    Cycle {
        /// The cycle, its first name repeated at the end: `a -> b -> a`.
        path: Vec<String>,
    },
    /// The node depends on a node that cannot be planned.
    #[error("dependency `{}` failed", .dependency.name())]
    Blocked {
        /// The dependency that cannot be planned.
        dependency: NodeId,
    },
}

fn kind_word(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Service => "service",
        NodeKind::Plugin => "plugin",
    }
}

/// What the planner needs to know of a node.
#[derive(Debug, Clone)]
pub(crate) struct NodeSpec {
    pub(crate) id: NodeId,
    pub(crate) version: Option<Version>,
    pub(crate) services: Vec<String>,
    pub(crate) requires: Vec<Requirement>,
}

/// The boot plan: the waves, and the nodes that cannot be planned with the reason.
///
/// Wave 0 holds the nodes without dependencies; wave *k* the nodes whose dependencies all lie
/// in waves before *k*. Inside a wave, nodes are sorted by kind (services first) and name, so a
/// plan is deterministic. A graph error affects only the nodes involved and their dependents.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) nodes: Vec<NodeId>,
    /// Per node index: its dependencies (indices), for the nodes that are planned.
    pub(crate) deps: Vec<Vec<usize>>,
    /// Per node index: its wave, or `None` if rejected.
    pub(crate) wave_of: Vec<Option<usize>>,
    pub(crate) waves: Vec<Vec<usize>>,
    pub(crate) rejected: Vec<(usize, GraphError)>,
}

impl Plan {
    /// The waves, in boot order.
    pub fn waves(&self) -> impl ExactSizeIterator<Item = Vec<&NodeId>> + '_ {
        self.waves
            .iter()
            .map(|w| w.iter().map(|&i| &self.nodes[i]).collect())
    }

    /// The number of waves.
    pub fn wave_count(&self) -> usize {
        self.waves.len()
    }

    /// The wave of a node, if it is planned.
    pub fn wave_of(&self, node: &NodeId) -> Option<usize> {
        let i = self.nodes.iter().position(|n| n == node)?;
        self.wave_of[i]
    }

    /// The nodes that cannot be planned, with the reason.
    pub fn rejected(&self) -> impl Iterator<Item = (&NodeId, &GraphError)> + '_ {
        self.rejected.iter().map(|(i, e)| (&self.nodes[*i], e))
    }

    /// Every node of the graph.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, wave) in self.waves.iter().enumerate() {
            write!(f, "wave {k}:")?;
            for (j, &i) in wave.iter().enumerate() {
                write!(f, "{} {}", if j == 0 { "" } else { "," }, self.nodes[i])?;
            }
            writeln!(f)?;
        }
        if !self.rejected.is_empty() {
            writeln!(f, "not planned:")?;
            for (i, err) in &self.rejected {
                writeln!(f, "  {}: {err}", self.nodes[*i])?;
            }
        }
        Ok(())
    }
}

/// Computes the plan. `specs` must have unique ids.
pub(crate) fn plan(specs: &[NodeSpec]) -> Plan {
    let n = specs.len();
    let mut index: HashMap<&NodeId, usize> = HashMap::with_capacity(n);
    for (i, s) in specs.iter().enumerate() {
        index.insert(&s.id, i);
    }
    let nodes: Vec<NodeId> = specs.iter().map(|s| s.id.clone()).collect();

    // 1. Resolve edges; a missing node or a version mismatch is the node's own error.
    let mut own_error: Vec<Option<GraphError>> = vec![None; n];
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, spec) in specs.iter().enumerate() {
        let services = spec
            .services
            .iter()
            .map(|s| (NodeKind::Service, s.as_str(), None));
        let plugins = spec
            .requires
            .iter()
            .map(|r| (NodeKind::Plugin, r.name(), Some(r)));
        for (kind, name, requirement) in services.chain(plugins) {
            let target = index.get(&NodeId::new(kind, name)).copied();
            let Some(j) = target else {
                own_error[i].get_or_insert(GraphError::UnknownDependency {
                    name: name.to_owned(),
                    kind,
                });
                continue;
            };
            if let (Some(req), Some(found)) = (requirement, &specs[j].version)
                && !req.matches(found)
            {
                own_error[i].get_or_insert(GraphError::VersionMismatch {
                    requirement: req.clone(),
                    found: found.clone(),
                });
            }
            if !deps[i].contains(&j) {
                deps[i].push(j);
            }
        }
    }

    // 2. Kahn: topological order over every resolved edge.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree: Vec<usize> = vec![0; n];
    for (i, ds) in deps.iter().enumerate() {
        indegree[i] = ds.len();
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(i) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(d);
            }
        }
    }

    // 3. Nodes left over are in a cycle or behind one.
    let mut error = own_error;
    if order.len() < n {
        let left: Vec<usize> = (0..n).filter(|&i| indegree[i] > 0).collect();
        for component in cycles(&left, &deps, &indegree) {
            let path = cycle_path(&component, &deps, &nodes);
            for &i in &component {
                error[i].get_or_insert(GraphError::Cycle { path: path.clone() });
            }
        }
        // The rest of `left` depends on a cycle; order them so that blocking propagates.
        let mut placed = vec![false; n];
        for &i in &order {
            placed[i] = true;
        }
        let mut pending: Vec<usize> = left;
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|&i| {
                let ready =
                    error[i].is_some() || deps[i].iter().all(|&d| placed[d] || error[d].is_some());
                if ready {
                    order.push(i);
                    placed[i] = true;
                }
                !ready
            });
            if pending.len() == before {
                // Cannot happen: every remaining node leads to a cycle member, which has an error.
                order.append(&mut pending);
            }
        }
    }

    // 4. Waves for the planned nodes; blocking for the others, in topological order.
    let mut wave_of: Vec<Option<usize>> = vec![None; n];
    for &i in &order {
        if error[i].is_some() {
            continue;
        }
        let blocker = deps[i]
            .iter()
            .copied()
            .filter(|&d| wave_of[d].is_none())
            .min_by(|&a, &b| nodes[a].cmp(&nodes[b]));
        if let Some(d) = blocker {
            error[i] = Some(GraphError::Blocked {
                dependency: nodes[d].clone(),
            });
            continue;
        }
        wave_of[i] = Some(
            deps[i]
                .iter()
                .map(|&d| wave_of[d].unwrap_or(0) + 1)
                .max()
                .unwrap_or(0),
        );
    }
    let wave_count = wave_of.iter().flatten().max().map_or(0, |m| m + 1);
    let mut waves: Vec<Vec<usize>> = vec![Vec::new(); wave_count];
    for (i, w) in wave_of.iter().enumerate() {
        if let Some(w) = w {
            waves[*w].push(i);
        }
    }
    for wave in &mut waves {
        wave.sort_by(|&a, &b| nodes[a].cmp(&nodes[b]));
    }
    let mut rejected: Vec<(usize, GraphError)> = error
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| e.map(|e| (i, e)))
        .collect();
    rejected.sort_by(|a, b| nodes[a.0].cmp(&nodes[b.0]));
    Plan {
        nodes,
        deps,
        wave_of,
        waves,
        rejected,
    }
}

/// The strongly connected components of the leftover subgraph that are real cycles (Tarjan,
/// iterative, so deep graphs cannot overflow the stack).
fn cycles(left: &[usize], deps: &[Vec<usize>], indegree: &[usize]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let in_left = |i: usize| indegree[i] > 0;
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next = 0usize;
    let mut out = Vec::new();
    for &root in left {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its dependency list)
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if let Some(&w) = deps[v].get(*pos) {
                *pos += 1;
                if !in_left(w) {
                    continue;
                }
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 || deps[v].contains(&v) {
                        out.push(component);
                    }
                }
            }
        }
    }
    out
}

/// A readable cycle through a component: from its smallest node, following the smallest
/// dependency inside the component, until a node repeats.
fn cycle_path(component: &[usize], deps: &[Vec<usize>], nodes: &[NodeId]) -> Vec<String> {
    let start = *component
        .iter()
        .min_by(|&&a, &&b| nodes[a].cmp(&nodes[b]))
        .expect("a component is never empty");
    let mut path = vec![start];
    let mut current = start;
    loop {
        let next = deps[current]
            .iter()
            .copied()
            .filter(|d| component.contains(d))
            .min_by(|&a, &b| nodes[a].cmp(&nodes[b]))
            .expect("every member of a cycle depends on another member");
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut names: Vec<String> = path[pos..]
                .iter()
                .map(|&i| nodes[i].name().to_owned())
                .collect();
            names.push(nodes[next].name().to_owned());
            return names;
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, version: &str, requires: &[&str]) -> NodeSpec {
        NodeSpec {
            id: NodeId::plugin(name),
            version: Some(version.parse().unwrap()),
            services: vec![],
            requires: requires.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    fn names(plan: &Plan) -> Vec<Vec<String>> {
        plan.waves()
            .map(|w| w.iter().map(|n| n.name().to_owned()).collect())
            .collect()
    }

    fn reason(plan: &Plan, name: &str) -> String {
        plan.rejected()
            .find(|(n, _)| n.name() == name)
            .map(|(_, e)| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn waves_are_levels_sorted_by_name() {
        let plan = plan(&[
            plugin("c", "1.0.0", &["a", "b"]),
            plugin("b", "1.0.0", &[]),
            plugin("a", "1.0.0", &[]),
            plugin("d", "1.0.0", &["c"]),
        ]);
        assert_eq!(names(&plan), [vec!["a", "b"], vec!["c"], vec!["d"]]);
        assert_eq!(
            plan.to_string(),
            "wave 0: plugin `a`, plugin `b`\nwave 1: plugin `c`\nwave 2: plugin `d`\n"
        );
    }

    #[test]
    fn services_and_plugins_share_the_graph() {
        let mut a = plugin("a", "1.0.0", &[]);
        a.services = vec!["db".into()];
        let db = NodeSpec {
            id: NodeId::service("db"),
            version: None,
            services: vec![],
            requires: vec![],
        };
        let plan = plan(&[a, db]);
        assert_eq!(names(&plan), [vec!["db"], vec!["a"]]);
        assert_eq!(plan.wave_of(&NodeId::service("db")), Some(0));
    }

    #[test]
    fn graph_errors_stay_local() {
        let plan = plan(&[
            plugin("a", "1.0.0", &[]),
            plugin("d", "1.0.0", &["ghost"]),
            plugin("x", "1.0.0", &["d"]),
            plugin("e", "1.0.0", &["f"]),
            plugin("f", "1.0.0", &["e"]),
            plugin("y", "1.0.0", &["e"]),
            plugin("old", "2.0.0", &[]),
            plugin("v", "1.0.0", &["old@^1.2"]),
            plugin("me", "1.0.0", &["a@^1"]),
        ]);
        assert_eq!(names(&plan), [vec!["a", "old"], vec!["me"]]);
        assert_eq!(
            reason(&plan, "d"),
            "unknown dependency `ghost` (no plugin of that name)"
        );
        assert_eq!(reason(&plan, "x"), "dependency `d` failed");
        assert_eq!(reason(&plan, "e"), "dependency cycle: e -> f -> e");
        assert_eq!(reason(&plan, "f"), "dependency cycle: e -> f -> e");
        assert_eq!(reason(&plan, "y"), "dependency `e` failed");
        assert_eq!(
            reason(&plan, "v"),
            "requires `old@^1.2`, but `old` is version 2.0.0"
        );
    }

    #[test]
    fn longer_cycles_and_self_loops() {
        let mut s = plugin("s", "1.0.0", &[]);
        s.requires = vec!["s".parse().unwrap()];
        let plan = plan(&[
            plugin("p", "1.0.0", &["q"]),
            plugin("q", "1.0.0", &["r"]),
            plugin("r", "1.0.0", &["p"]),
            s,
        ]);
        assert_eq!(reason(&plan, "q"), "dependency cycle: p -> q -> r -> p");
        assert_eq!(reason(&plan, "s"), "dependency cycle: s -> s");
        assert_eq!(plan.wave_count(), 0);
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let mut specs: Vec<NodeSpec> = (0..20_000)
            .map(|i| {
                let req = if i == 0 {
                    vec![]
                } else {
                    vec![format!("n{}", i - 1)]
                };
                NodeSpec {
                    id: NodeId::plugin(&format!("n{i}")),
                    version: Some(Version::new(1, 0, 0)),
                    services: vec![],
                    requires: req.iter().map(|r| r.parse().unwrap()).collect(),
                }
            })
            .collect();
        let p = plan(&specs);
        assert_eq!(p.wave_count(), 20_000);
        // Close the chain into one big cycle.
        specs[0].requires = vec!["n19999".parse().unwrap()];
        let p = plan(&specs);
        assert_eq!(p.wave_count(), 0);
        assert_eq!(p.rejected().count(), 20_000);
    }
}
