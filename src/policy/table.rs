//! The routing table: routes compiled once into indexes so that matching a request
//! costs a hash lookup plus a scan of the few wildcard routes that could apply,
//! whatever the size of the table. First match in file order wins.

use super::route::{ActionPattern, Route, Segment};
use crate::whisk::names::ActionPath;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Immutable, compiled routes.
#[derive(Debug, Default)]
pub struct RoutingTable {
    /// Shared: an invocation holds its route by reference count, not by copy.
    routes: Vec<Arc<Route>>,
    /// Fully literal patterns, by namespace and action name, in file order (looked up
    /// by the request's own segments: no key is built per request). The bucket holds
    /// only the routes of that namespace and name, so it is short whatever the table.
    exact: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Routes with wildcards, bucketed by literal namespace, in file order.
    wildcard_by_namespace: HashMap<String, Vec<usize>>,
    /// Routes with a `*` namespace and a literal action, by action name, in file order.
    any_namespace_by_action: HashMap<String, Vec<usize>>,
    /// Routes with a `*` namespace, a `*` action and a literal package, by package.
    any_namespace_by_package: HashMap<String, Vec<usize>>,
    /// Routes with a `*` namespace and nothing literal to index them by, in file order.
    any_namespace_rest: Vec<usize>,
    /// Action-name literals of all routes (for the no-auth fast path).
    action_names: HashSet<String>,
    /// True if some route has `*` as its action segment.
    any_action_wildcard: bool,
}

impl RoutingTable {
    /// Compiles `routes` (already in file order).
    pub fn new(routes: Vec<Route>) -> Self {
        let mut t = Self::default();
        for (i, r) in routes.iter().enumerate() {
            match &r.pattern.action {
                Segment::Literal(a) => {
                    t.action_names.insert(a.clone());
                }
                Segment::Any => t.any_action_wildcard = true,
            }
            if r.pattern.is_literal() {
                if let (Segment::Literal(ns), Segment::Literal(a)) =
                    (&r.pattern.namespace, &r.pattern.action)
                {
                    t.exact
                        .entry(ns.clone())
                        .or_default()
                        .entry(a.clone())
                        .or_default()
                        .push(i);
                }
            } else {
                match &r.pattern.namespace {
                    Segment::Literal(ns) => t
                        .wildcard_by_namespace
                        .entry(ns.clone())
                        .or_default()
                        .push(i),
                    Segment::Any => match (&r.pattern.action, &r.pattern.package) {
                        (Segment::Literal(a), _) => t
                            .any_namespace_by_action
                            .entry(a.clone())
                            .or_default()
                            .push(i),
                        (Segment::Any, Some(Segment::Literal(p))) => t
                            .any_namespace_by_package
                            .entry(p.clone())
                            .or_default()
                            .push(i),
                        _ => t.any_namespace_rest.push(i),
                    },
                }
            }
        }
        t.routes = routes.into_iter().map(Arc::new).collect();
        t
    }

    /// All routes in file order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True if there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Cheap pre-check before authentication: could any route cover an action with
    /// this name? When false the request is proxied without any identity work.
    pub(crate) fn may_cover_action_name(&self, action: &str) -> bool {
        self.any_action_wildcard || self.action_names.contains(action)
    }

    /// The first route (in file order) covering `path`, whose namespace is resolved.
    ///
    /// A hash lookup for exact routes, then a scan of only those wildcard buckets that
    /// could cover the path (by namespace, or for `*` namespaces by action or package
    /// name); each bucket is in file order and its scan stops at the best index so far,
    /// so the cost does not grow with the size of the table.
    pub fn find(&self, path: &ActionPath) -> Option<&Arc<Route>> {
        let mut best = None;
        let scan = |candidates: &[usize], best: &mut Option<usize>| {
            for &i in candidates {
                if best.is_some_and(|b| i >= b) {
                    break;
                }
                if self.routes[i].pattern.matches(path) {
                    *best = Some(i);
                    break;
                }
            }
        };
        if let Some(c) = self
            .exact
            .get(&path.namespace)
            .and_then(|by_action| by_action.get(&path.action))
        {
            scan(c, &mut best);
        }
        if let Some(c) = self.wildcard_by_namespace.get(&path.namespace) {
            scan(c, &mut best);
        }
        if let Some(c) = self.any_namespace_by_action.get(&path.action) {
            scan(c, &mut best);
        }
        if let Some(c) = path
            .package
            .as_ref()
            .and_then(|p| self.any_namespace_by_package.get(p))
        {
            scan(c, &mut best);
        }
        scan(&self.any_namespace_rest, &mut best);
        best.map(|i| &self.routes[i])
    }

    /// True if some route has a package segment whose pattern could cover an action
    /// named `action` in some package: only then is it worth resolving a package
    /// binding to find a route for the bound package's action.
    pub(crate) fn may_cover_packaged(&self, action: &str) -> bool {
        self.routes
            .iter()
            .any(|r| r.pattern.package.is_some() && r.pattern.action.matches(action))
    }

    /// Routes whose patterns are identical to an earlier route's: they can never match.
    pub(crate) fn shadowed(&self) -> Vec<(&Route, &Route)> {
        let mut seen: HashMap<&ActionPattern, &Route> = HashMap::new();
        let mut out = Vec::new();
        for r in &self.routes {
            if let Some(first) = seen.get(&r.pattern) {
                out.push((r.as_ref(), *first));
            } else {
                seen.insert(&r.pattern, r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PayloadMode;
    use crate::policy::route::{Fallback, FunctionTemplate};

    fn route(i: usize, pattern: &str) -> Route {
        let pattern = ActionPattern::parse(pattern).unwrap();
        Route {
            index: i,
            line: i + 1,
            function: FunctionTemplate::parse("f", false).unwrap(),
            label: pattern.to_string().into(),
            pattern,
            qualifier: None,
            weight: 100.0,
            timeout: None,
            fallback: Fallback::Controller,
            payload: PayloadMode::OpenWhisk,
            web: None,
        }
    }

    fn table(patterns: &[&str]) -> RoutingTable {
        RoutingTable::new(
            patterns
                .iter()
                .enumerate()
                .map(|(i, p)| route(i, p))
                .collect(),
        )
    }

    fn found(t: &RoutingTable, p: &str) -> Option<usize> {
        t.find(&ActionPath::parse(p).unwrap()).map(|r| r.index)
    }

    #[test]
    fn first_match_in_file_order_wins() {
        let t = table(&[
            "*/hello",
            "guest/hello",
            "guest/*",
            "*/*/*",
            "guest/pkg/hello",
        ]);
        assert_eq!(found(&t, "guest/hello"), Some(0));
        assert_eq!(found(&t, "guest/other"), Some(2));
        assert_eq!(found(&t, "guest/pkg/hello"), Some(3));
        assert_eq!(found(&t, "other/x"), None);
        let t = table(&["guest/hello", "*/hello"]);
        assert_eq!(found(&t, "guest/hello"), Some(0));
        assert_eq!(found(&t, "x/hello"), Some(1));
    }

    #[test]
    fn prechecks() {
        let t = table(&["guest/hello", "*/pkg/x"]);
        assert!(t.may_cover_action_name("hello"));
        assert!(!t.may_cover_action_name("nope"));
        assert!(t.may_cover_packaged("x"));
        assert!(!t.may_cover_packaged("hello"));
        assert!(table(&["guest/*"]).may_cover_action_name("anything"));
    }

    #[test]
    fn shadowed_routes_are_reported() {
        let t = table(&["guest/a", "guest/a", "guest/b"]);
        let s = t.shadowed();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].0.index, s[0].1.index), (1, 0));
    }

    #[test]
    fn large_tables_match_correctly() {
        let mut patterns: Vec<String> = (0..5000).map(|i| format!("ns{i}/action{i}")).collect();
        patterns.extend((0..5000).map(|i| format!("ns{i}/*")));
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let t = table(&refs);
        assert_eq!(found(&t, "ns4999/action4999"), Some(4999));
        assert_eq!(found(&t, "ns4999/other"), Some(9999));
        assert_eq!(found(&t, "nsX/other"), None);
        // Every tenant with the same action names: each lookup's bucket is its own
        // namespace's routes, not every route named `hello`.
        let mut patterns: Vec<String> = (0..5000).map(|i| format!("ns{i}/hello")).collect();
        patterns.extend((0..5000).map(|i| format!("ns{i}/pkg/hello")));
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let t = table(&refs);
        assert_eq!(found(&t, "ns4999/hello"), Some(4999));
        assert_eq!(found(&t, "ns4999/pkg/hello"), Some(9999));
        assert_eq!(found(&t, "ns0/pkg/hello"), Some(5000));
        assert_eq!(found(&t, "ns0/other/hello"), None);
        assert_eq!(
            t.exact
                .get("ns4999")
                .and_then(|by_action| by_action.get("hello"))
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn indexed_lookup_agrees_with_a_linear_first_match() {
        // Every kind of pattern, interleaved, including ones indexed by action or
        // package under a `*` namespace and fully wild ones.
        let names = ["a", "b", "c"];
        let mut patterns = Vec::new();
        for ns in ["n1", "n2", "*"] {
            for pkg in [None, Some("p"), Some("q"), Some("*")] {
                for act in ["a", "b", "*"] {
                    patterns.push(match pkg {
                        Some(p) => format!("{ns}/{p}/{act}"),
                        None => format!("{ns}/{act}"),
                    });
                }
            }
        }
        // Several orders, so each bucket is sometimes first and sometimes last.
        for rotation in [0, 7, 13, 29] {
            let mut ps = patterns.clone();
            let n = ps.len();
            ps.rotate_left(rotation % n);
            ps.reverse();
            let refs: Vec<&str> = ps.iter().map(String::as_str).collect();
            let t = table(&refs);
            for ns in ["n1", "n2", "n3"] {
                for pkg in [None, Some("p"), Some("q"), Some("r")] {
                    for act in names {
                        let path = match pkg {
                            Some(p) => format!("{ns}/{p}/{act}"),
                            None => format!("{ns}/{act}"),
                        };
                        let p = ActionPath::parse(&path).unwrap();
                        let linear = t.routes().iter().find(|r| r.pattern.matches(&p));
                        assert_eq!(
                            t.find(&p).map(|r| r.index),
                            linear.map(|r| r.index),
                            "{path} with rotation {rotation}"
                        );
                    }
                }
            }
        }
    }
}
