//! What `owl sync` did: one [`ActionReport`] per action handled (logged as it
//! happens, printed by `--once` / `--dry-run`, kept for `/status`), and its own
//! Prometheus registry behind `/metrics` (labels are outcomes and reasons — never
//! action or function names).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// What happened to one action's function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The function was created.
    Created,
    /// Code or configuration changed (and, with an alias, a version was published).
    Updated,
    /// The function already matched the action.
    Unchanged,
    /// The function was deleted (action deleted, unmapped, or no longer runnable).
    Deleted,
    /// The action cannot run on Lambda; its route falls back to the controller.
    Skipped,
    /// A function of that name exists that owl did not create (or serves another
    /// action): left alone.
    Conflict,
    /// Lambda or the source failed; retried on the next pass.
    Failed,
}

impl Outcome {
    /// The label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Deleted => "deleted",
            Self::Skipped => "skipped",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
        }
    }

    /// How `--dry-run` says it.
    fn planned(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Updated => "update",
            Self::Unchanged => "unchanged",
            Self::Deleted => "delete",
            Self::Skipped => "skip",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
        }
    }
}

/// One action's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionReport {
    /// The action (`ns/action`, `ns/pkg/action`).
    pub action: String,
    /// Its function.
    pub function: String,
    /// What happened (or, in a dry run, would happen).
    pub outcome: Outcome,
    /// Details: the changes, the reason for a skip, the error.
    pub detail: String,
    /// True when nothing was changed (dry run).
    pub dry_run: bool,
}

impl fmt::Display for ActionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            self.outcome.planned()
        } else {
            self.outcome.as_str()
        };
        write!(f, "{verb:<10} {:<40} {}", self.action, self.function)?;
        if !self.detail.is_empty() {
            write!(f, "  ({})", self.detail)?;
        }
        Ok(())
    }
}

/// The reports of one pass.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In the order they finished.
    pub actions: Vec<ActionReport>,
}

impl Report {
    /// The report for `action`, if it was handled.
    pub fn get(&self, action: &str) -> Option<&ActionReport> {
        self.actions.iter().rev().find(|r| r.action == action)
    }

    /// True if some action failed.
    pub(crate) fn has_failures(&self) -> bool {
        self.actions.iter().any(|r| r.outcome == Outcome::Failed)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted = self.actions.clone();
        sorted.sort_by(|a, b| a.action.cmp(&b.action).then(a.function.cmp(&b.function)));
        for r in &sorted {
            writeln!(f, "{r}")?;
        }
        let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
        for r in &self.actions {
            *counts.entry(r.outcome).or_default() += 1;
        }
        let summary: Vec<String> = counts
            .iter()
            .map(|(o, n)| {
                let word = if self.actions.first().is_some_and(|r| r.dry_run) {
                    o.planned()
                } else {
                    o.as_str()
                };
                format!("{n} {word}")
            })
            .collect();
        if summary.is_empty() {
            writeln!(f, "nothing to do")
        } else {
            writeln!(f, "{}", summary.join(", "))
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// `owl sync`'s metrics and the last status of every action.
pub struct Metrics {
    registry: Registry,
    actions: Family<OutcomeLabels, Counter>,
    retries: Family<ReasonLabels, Counter>,
    failing: Gauge,
    managed: Gauge,
    last_pass: Gauge<f64, AtomicU64>,
    passes: Counter,
    status: Mutex<BTreeMap<String, ActionReport>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let actions = Family::<OutcomeLabels, Counter>::default();
        let retries = Family::<ReasonLabels, Counter>::default();
        let failing = Gauge::default();
        let managed = Gauge::default();
        let last_pass = Gauge::<f64, AtomicU64>::default();
        let passes = Counter::default();
        registry.register(
            "owl_sync_actions",
            "Actions reconciled, by outcome (created, updated, unchanged, deleted, skipped, conflict, failed)",
            actions.clone(),
        );
        registry.register(
            "owl_sync_lambda_retries",
            "Lambda control-plane calls retried, by reason (throttled, in_progress, unavailable)",
            retries.clone(),
        );
        registry.register(
            "owl_sync_failing_actions",
            "Actions whose last reconciliation failed",
            failing.clone(),
        );
        registry.register(
            "owl_sync_managed_functions",
            "Functions created by owl sync, as of the last full pass",
            managed.clone(),
        );
        registry.register(
            "owl_sync_last_pass_timestamp_seconds",
            "When the last batch or full pass finished (Unix time)",
            last_pass.clone(),
        );
        registry.register(
            "owl_sync_passes",
            "Batches and full passes finished",
            passes.clone(),
        );
        Self {
            registry,
            actions,
            retries,
            failing,
            managed,
            last_pass,
            passes,
            status: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one action's result (not for dry runs) and logs it.
    pub fn record(&self, r: &ActionReport) {
        if r.dry_run {
            return;
        }
        self.actions
            .get_or_create(&OutcomeLabels {
                outcome: r.outcome.as_str(),
            })
            .inc();
        if r.outcome == Outcome::Failed {
            tracing::warn!(action = %r.action, function = %r.function, outcome = r.outcome.as_str(), detail = %r.detail, "sync");
        } else {
            tracing::info!(action = %r.action, function = %r.function, outcome = r.outcome.as_str(), detail = %r.detail, "sync");
        }
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if r.outcome == Outcome::Deleted {
            status.remove(&r.action);
        } else {
            status.insert(r.action.clone(), r.clone());
        }
        let failing = status
            .values()
            .filter(|x| x.outcome == Outcome::Failed)
            .count();
        self.failing.set(failing as i64);
    }

    /// Counts a retried Lambda call.
    pub fn retry(&self, reason: &'static str) {
        self.retries.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Marks the end of a batch or pass.
    pub(crate) fn pass_finished(&self) {
        self.passes.inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.last_pass.set(now);
    }

    /// Sets the number of functions owl manages.
    pub(crate) fn set_managed(&self, n: usize) {
        self.managed.set(n as i64);
    }

    /// The last status of every action, as JSON.
    pub fn status_json(&self) -> serde_json::Value {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::Value::Object(
            status
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        serde_json::json!({"function": r.function, "outcome": r.outcome.as_str(), "detail": r.detail}),
                    )
                })
                .collect(),
        )
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(action: &str, outcome: Outcome) -> ActionReport {
        ActionReport {
            action: action.into(),
            function: format!("owl-{action}"),
            outcome,
            detail: String::new(),
            dry_run: false,
        }
    }

    #[test]
    fn metrics_count_outcomes_and_track_failing_actions() {
        let m = Metrics::new();
        m.record(&report("guest/a", Outcome::Failed));
        m.record(&report("guest/b", Outcome::Created));
        let text = m.render();
        assert!(
            text.contains("owl_sync_actions_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.contains("owl_sync_failing_actions 1"), "{text}");
        m.record(&report("guest/a", Outcome::Updated));
        assert!(m.render().contains("owl_sync_failing_actions 0"));
        m.record(&report("guest/b", Outcome::Deleted));
        assert!(m.status_json().get("guest/b").is_none());
        assert_eq!(m.status_json()["guest/a"]["outcome"], "updated");
    }

    #[test]
    fn dry_runs_print_a_plan() {
        let mut r = report("guest/a", Outcome::Created);
        r.dry_run = true;
        let rep = Report { actions: vec![r] };
        let text = rep.to_string();
        assert!(text.starts_with("create     guest/a"), "{text}");
        assert!(text.contains("1 create"), "{text}");
    }
}
