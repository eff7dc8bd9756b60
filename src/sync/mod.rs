//! `owl sync`: a Lambda function for every OpenWhisk action a route maps, kept in
//! step with the action (docs/sync.md).
//!
//! Sources (`couch`: the whisks database's `_changes` feed, resumable from a
//! persisted sequence; `poll`: the controller's API with one key) yield changes;
//! `action` reads them; `plan` decides, without side effects, what the function
//! should be and which steps bring Lambda there; `package` builds the zip the owl
//! runtime expects; `lambda` is the control-plane client (retries, waits); `status`
//! holds reports and metrics. Reconciling is idempotent: an action that already
//! matches its function costs reads only.
//!
//! Invariants: a function is changed or deleted only when its tags say owl sync
//! created it for that very action; an alias moves only to a version published from
//! the code just checked (`PublishVersion` with `CodeSha256`), so the gateway's
//! qualifier switches in one step; the feed position is saved only after every
//! change before it was handled.

pub mod action;
pub(crate) mod couch;
pub(crate) mod package;
pub(crate) mod plan;
pub(crate) mod poll;
pub mod status;

use crate::lambda::StaticCredentials;
use crate::lambda::control::{self as lambda, Control};
use crate::policy::{Policy, Route, SyncConfig, SyncSource};
use action::{ActionDoc, Code, CodeRef};
use couch::{Change, StateFile, Whisks};
use futures_util::StreamExt;
use plan::{Decision, Step};
use poll::{ControllerSource, Listed};
use serde_json::Value;
use status::{ActionReport, Metrics, Outcome, Report};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How `owl sync` runs.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Decide and report, change nothing (no Lambda writes, no saved sequence).
    pub dry_run: bool,
    /// Static Lambda credentials (emulators only); `None` uses the AWS default chain.
    pub lambda_credentials: Option<StaticCredentials>,
}

enum Source {
    Couch {
        whisks: Whisks,
        state: StateFile,
    },
    Controller {
        api: ControllerSource,
        poll_interval: Duration,
        /// What the last poll listed (only actions handled without failure).
        known: Mutex<BTreeMap<String, Listed>>,
    },
}

/// Keeps functions in step with actions.
pub struct Syncer {
    policy: Arc<Policy>,
    cfg: SyncConfig,
    control: Control,
    source: Source,
    bootstrap: Option<Arc<Vec<u8>>>,
    metrics: Arc<Metrics>,
    dry_run: bool,
}

impl Syncer {
    /// Builds the syncer for `policy`, which must have a `[sync]` section.
    pub async fn new(policy: Policy, opts: SyncOptions) -> anyhow::Result<Self> {
        let cfg = policy.sync.clone().ok_or_else(|| {
            anyhow::anyhow!("the policy has no [sync] section (see docs/sync.md)")
        })?;
        let bootstrap = match &cfg.bootstrap {
            Some(p) => Some(Arc::new(std::fs::read(p).map_err(|e| {
                anyhow::anyhow!("cannot read [sync] bootstrap {}: {e}", p.display())
            })?)),
            None => None,
        };
        let source = match &cfg.source {
            SyncSource::CouchDb { state_file } => {
                let couch_cfg = policy.couchdb.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("[sync] source = \"couchdb\" needs a [couchdb] section")
                })?;
                Source::Couch {
                    whisks: Whisks::new(
                        crate::couchdb::CouchDb::new(couch_cfg)?,
                        couch_cfg.whisks_db.clone(),
                        couch_cfg.timeout,
                    ),
                    state: StateFile::new(state_file),
                }
            }
            SyncSource::Controller {
                key_file,
                poll_interval,
            } => Source::Controller {
                api: ControllerSource::new(
                    crate::controller::ControllerClient::new(&policy.controller)?,
                    key_file,
                )?,
                poll_interval: *poll_interval,
                known: Mutex::new(BTreeMap::new()),
            },
        };
        let metrics = Arc::new(Metrics::new());
        let control = Control::new(
            &policy.lambda,
            opts.lambda_credentials.as_ref(),
            cfg.retries,
            {
                let metrics = metrics.clone();
                Arc::new(move |reason| metrics.retry(reason))
            },
        )
        .await?;
        Ok(Self {
            policy: Arc::new(policy),
            cfg,
            control,
            source,
            bootstrap,
            metrics,
            dry_run: opts.dry_run,
        })
    }

    /// The metrics and per-action status.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// One pass: every change the source has (from the saved sequence, or every
    /// action the key sees), then a full pass over owl's functions (a failed full
    /// pass is reported as a failed entry).
    pub async fn once(&self) -> anyhow::Result<Report> {
        let mut report = self.catch_up().await?;
        match self.full_pass().await {
            Ok(r) => report.actions.extend(r.actions),
            Err(e) => report.actions.push(self.report(
                "(full pass)",
                "",
                Outcome::Failed,
                format!("{e:#}"),
            )),
        }
        Ok(report)
    }

    /// Follows the source until `shutdown` resolves: catches up, then long-polls
    /// the feed (or polls the controller), with a full pass every
    /// `resync_interval`. Failures are logged and retried with backoff.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        if self.dry_run {
            anyhow::bail!("a dry run is one pass: use `once`");
        }
        tokio::pin!(shutdown);
        let mut next_full_pass = tokio::time::Instant::now();
        let mut backoff = Duration::from_secs(1);
        loop {
            let work = async {
                if tokio::time::Instant::now() >= next_full_pass {
                    self.full_pass().await?;
                    next_full_pass = tokio::time::Instant::now() + self.cfg.resync_interval;
                }
                self.step().await
            };
            let result = tokio::select! {
                () = &mut shutdown => return Ok(()),
                r = work => r,
            };
            match result {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?backoff, "sync pass failed");
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// One step of `run`: a long poll of the feed, or one controller poll after the
    /// interval.
    async fn step(&self) -> anyhow::Result<()> {
        match &self.source {
            Source::Couch { whisks, state } => {
                let since = state.load(whisks.name())?;
                let batch = whisks.changes(&since, true).await?;
                if batch.changes.is_empty() && batch.last_seq == since {
                    return Ok(());
                }
                let report = self.reconcile(batch.changes).await;
                self.advance(&report, &batch.last_seq)?;
                Ok(())
            }
            Source::Controller { poll_interval, .. } => {
                let report = self.poll().await?;
                if report.has_failures() {
                    anyhow::bail!("{} action(s) failed", failures(&report));
                }
                tokio::time::sleep(*poll_interval).await;
                Ok(())
            }
        }
    }

    /// Every change the source has now.
    async fn catch_up(&self) -> anyhow::Result<Report> {
        match &self.source {
            Source::Couch { whisks, state } => {
                let mut since = state.load(whisks.name())?;
                let mut report = Report::default();
                loop {
                    let batch = whisks.changes(&since, false).await?;
                    let r = self.reconcile(batch.changes).await;
                    let failed = r.has_failures();
                    report.actions.extend(r.actions);
                    if failed && !self.dry_run {
                        // The sequence stays before the failed change; the next run
                        // handles it again.
                        break;
                    }
                    if !self.dry_run {
                        state.save(whisks.name(), &batch.last_seq)?;
                    }
                    since = batch.last_seq;
                    if !batch.more {
                        break;
                    }
                }
                Ok(report)
            }
            Source::Controller { .. } => self.poll().await,
        }
    }

    /// Saves the feed position after a batch that had no failures.
    fn advance(&self, report: &Report, last_seq: &Value) -> anyhow::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        if report.has_failures() {
            anyhow::bail!(
                "{} action(s) failed; the batch will be handled again",
                failures(report)
            );
        }
        if let Source::Couch { whisks, state } = &self.source {
            state.save(whisks.name(), last_seq)?;
        }
        Ok(())
    }

    /// One controller poll: reads the actions that changed since the last poll.
    async fn poll(&self) -> anyhow::Result<Report> {
        let Source::Controller { api, known, .. } = &self.source else {
            return Ok(Report::default());
        };
        let listed = api.list().await?;
        let previous = known.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut changes = Vec::new();
        for (id, l) in &listed {
            if previous.get(id) == Some(l) || !self.mapped(id) {
                continue;
            }
            match api.action(id).await? {
                Some(doc) => changes.push(Change::Upsert(Box::new(doc))),
                None => changes.push(Change::Removed(id.clone())),
            }
        }
        for id in previous.keys() {
            if !listed.contains_key(id) {
                changes.push(Change::Removed(id.clone()));
            }
        }
        let report = self.reconcile(changes).await;
        let failed: Vec<&str> = report
            .actions
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(|r| r.action.as_str())
            .collect();
        if !self.dry_run {
            let mut next = listed;
            for id in failed {
                // Not remembered: the next poll tries again.
                match previous.get(id) {
                    Some(old) => next.insert(id.to_string(), old.clone()),
                    None => next.remove(id),
                };
            }
            *known.lock().unwrap_or_else(|e| e.into_inner()) = next;
        }
        Ok(report)
    }

    /// True if some route covers the action `id`.
    fn mapped(&self, id: &str) -> bool {
        crate::whisk::ActionPath::parse(id).is_ok_and(|p| self.policy.routes.find(&p).is_some())
    }

    /// The route and function name for document `id`, if a route maps it.
    fn target(&self, id: &str) -> Option<(&Route, Result<String, String>)> {
        let path = crate::whisk::ActionPath::parse(id).ok()?;
        let route = self.policy.routes.find(&path)?;
        Some((route, route.function.render(&path)))
    }

    /// Handles a batch of changes: the last change of each document counts; actions
    /// of one function are handled one after another, functions `concurrency` at a
    /// time.
    pub(crate) async fn reconcile(&self, changes: Vec<Change>) -> Report {
        let mut report = Report::default();
        let changes = self.expand(changes, &mut report).await;
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            last.insert(c.id().to_string(), i);
        }
        let mut groups: BTreeMap<String, Vec<(Change, usize)>> = BTreeMap::new();
        for (i, change) in changes.into_iter().enumerate() {
            if last.get(change.id()) != Some(&i) {
                continue;
            }
            let Some((route, function)) = self.target(change.id()) else {
                tracing::debug!(id = change.id(), "no route maps this document");
                continue;
            };
            match function {
                Ok(f) => groups.entry(f).or_default().push((change, route.index)),
                Err(e) => {
                    if let Change::Upsert(_) = change {
                        report.actions.push(self.report(
                            change.id(),
                            "",
                            Outcome::Skipped,
                            format!("no function name: {e}"),
                        ));
                    }
                }
            }
        }
        let results: Vec<Vec<ActionReport>> = futures_util::stream::iter(groups)
            .map(|(function, items)| async move {
                let mut out = Vec::new();
                for (change, index) in items {
                    let route = &self.policy.routes.routes()[index];
                    if let Some(r) = self.reconcile_one(&change, route, &function).await {
                        out.push(r);
                    }
                }
                out
            })
            .buffer_unordered(self.cfg.concurrency)
            .collect()
            .await;
        report.actions.extend(results.into_iter().flatten());
        for r in &report.actions {
            self.metrics.record(r);
        }
        self.metrics.pass_finished();
        report
    }

    /// Replaces each package change with an upsert of every mapped action of the
    /// package, read afresh, in the package change's place: an action inherits its
    /// package's parameters, so a changed package changes its actions' functions.
    /// A package whose actions cannot be listed or read is a failed entry (the batch
    /// is handled again).
    async fn expand(&self, changes: Vec<Change>, report: &mut Report) -> Vec<Change> {
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            let Change::PackageUpdated(package) = change else {
                out.push(change);
                continue;
            };
            // Only the database feed says `PackageUpdated`; the controller's listing
            // tells a package's change by the package's stamp on its actions.
            let Source::Couch { whisks, .. } = &self.source else {
                continue;
            };
            let failed = |e: String| self.report(&package, "", Outcome::Failed, e);
            let members = match whisks.package_members(&package).await {
                Ok(m) => m,
                Err(e) => {
                    report
                        .actions
                        .push(failed(format!("listing the package's actions: {e}")));
                    continue;
                }
            };
            for id in members.into_iter().filter(|id| self.mapped(id)) {
                match whisks.action(&id).await {
                    Ok(Some(doc)) => out.push(Change::Upsert(Box::new(doc))),
                    // Deleted meanwhile: its own change follows in the feed.
                    Ok(None) => {}
                    Err(e) => report
                        .actions
                        .push(failed(format!("reading its action {id}: {e}"))),
                }
            }
        }
        out
    }

    /// The action with its package's parameters beneath its own, as OpenWhisk
    /// initialises it (`ActionDoc::inherit`). The controller's `GET …/actions/{name}`
    /// already answers with them merged
    /// [OW core/controller/.../controller/Actions.scala:366
    /// `resolveActionAndMergeParameters`]; the database holds them apart.
    async fn with_package(&self, doc: &ActionDoc) -> Result<ActionDoc, String> {
        let (Some(package), Source::Couch { whisks, .. }) = (doc.package_id(), &self.source) else {
            return Ok(doc.clone());
        };
        match whisks.package(&package).await {
            Ok(Some(p)) => Ok(doc.inherit(&p.parameters)),
            // The package is being deleted with its actions: their changes follow.
            Ok(None) => Ok(doc.clone()),
            Err(e) => Err(format!("reading the package {package}: {e}")),
        }
    }

    fn report(
        &self,
        action: &str,
        function: &str,
        outcome: Outcome,
        detail: String,
    ) -> ActionReport {
        ActionReport {
            action: action.to_string(),
            function: function.to_string(),
            outcome,
            detail,
            dry_run: self.dry_run,
        }
    }

    async fn reconcile_one(
        &self,
        change: &Change,
        route: &Route,
        function: &str,
    ) -> Option<ActionReport> {
        let id = change.id();
        let doc = match change {
            Change::Removed(_) => {
                return match self.delete_if_ours(function, id).await {
                    Ok(true) => {
                        Some(self.report(id, function, Outcome::Deleted, "action deleted".into()))
                    }
                    Ok(false) => None,
                    Err(e) => Some(self.report(id, function, Outcome::Failed, e.to_string())),
                };
            }
            // Expanded into its actions before the batch is grouped.
            Change::PackageUpdated(_) => return None,
            Change::Upsert(doc) => doc,
        };
        let doc = &match self.with_package(doc).await {
            Ok(d) => d,
            Err(e) => return Some(self.report(id, function, Outcome::Failed, e)),
        };
        let built = match plan::unsupported(doc, &self.cfg) {
            Some(reason) => Err(reason),
            None => match self.code(doc).await {
                Ok(Ok(code)) => {
                    package::build(doc, &code, self.bootstrap.as_deref().map(Vec::as_slice))
                }
                Ok(Err(reason)) => Err(reason),
                Err(e) => return Some(self.report(id, function, Outcome::Failed, e)),
            },
        };
        let package = match built {
            Ok(p) => p,
            Err(reason) => {
                // Its route falls back to the controller once no function answers.
                return Some(match self.delete_if_ours(function, id).await {
                    Ok(true) => self.report(
                        id,
                        function,
                        Outcome::Skipped,
                        format!("{reason}; its earlier function was deleted"),
                    ),
                    Ok(false) => self.report(id, function, Outcome::Skipped, reason),
                    Err(e) => self.report(id, function, Outcome::Failed, e.to_string()),
                });
            }
        };
        let alias = plan::managed_alias(route);
        let spec = plan::desired(doc, route, &self.cfg, function, package);
        let actual = match self.control.get(function, alias).await {
            Ok(a) => a,
            Err(e) => return Some(self.report(id, function, Outcome::Failed, e.to_string())),
        };
        let steps = match plan::decide(&spec, id, alias, actual.as_ref()) {
            Decision::Conflict(why) => {
                return Some(self.report(id, function, Outcome::Conflict, why));
            }
            Decision::Apply(steps) => steps,
        };
        if steps.is_empty() {
            return Some(self.report(id, function, Outcome::Unchanged, String::new()));
        }
        let outcome = if steps.first() == Some(&Step::Create) {
            Outcome::Created
        } else {
            Outcome::Updated
        };
        let mut detail = plan::describe(&steps, &spec);
        if self.dry_run {
            return Some(self.report(id, function, outcome, detail));
        }
        let arn = actual.as_ref().map(|f| f.arn.clone());
        for step in &steps {
            let done = match step {
                Step::Create => self.control.create(&spec).await,
                Step::UpdateCode => self.control.update_code(&spec).await,
                Step::UpdateConfiguration(_) => self.control.update_configuration(&spec).await,
                Step::Tag => match &arn {
                    Some(arn) => self.control.tag(arn, &spec.tags).await,
                    None => Ok(()),
                },
                Step::PublishAndMoveAlias(a) => {
                    match self
                        .control
                        .publish(function, &spec.code_sha256, &spec.description)
                        .await
                    {
                        Ok(v) => {
                            detail = detail.replace("new version", &format!("version {v}"));
                            self.control.point_alias(function, a, &v).await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = done {
                return Some(self.report(id, function, Outcome::Failed, e.to_string()));
            }
        }
        Some(self.report(id, function, outcome, detail))
    }

    /// The action's code; `Ok(Err(reason))` when it cannot be had (a skip),
    /// `Err` when the source failed (retried later).
    async fn code(&self, doc: &ActionDoc) -> Result<Result<Code, String>, String> {
        let fetched = match (&doc.code, &self.source) {
            (CodeRef::CouchAttachment(name), Source::Couch { whisks, .. }) => {
                match whisks.attachment(&doc.id, name).await {
                    Ok(Some(bytes)) => Some(bytes),
                    Ok(None) => {
                        return Err(format!(
                            "the code attachment {name} is gone; a newer revision of the action follows"
                        ));
                    }
                    Err(e) => return Err(format!("reading the code attachment: {e}")),
                }
            }
            _ => None,
        };
        Ok(action::code_from(doc.binary, &doc.code, fetched))
    }

    /// Deletes `function` if owl sync created it for action `id`. `Ok(true)` when it
    /// was deleted (or, in a dry run, would be).
    async fn delete_if_ours(&self, function: &str, id: &str) -> Result<bool, lambda::ControlError> {
        match self.control.get(function, None).await? {
            Some(f) if f.managed_action() == Some(id) => {
                if !self.dry_run {
                    self.control.delete(function).await?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A full pass over the functions owl sync created: those whose action is gone,
    /// no longer mapped to them, or no longer runnable are deleted.
    pub(crate) async fn full_pass(&self) -> anyhow::Result<Report> {
        let prefixes = self.name_prefixes();
        let mut report = Report::default();
        if prefixes.is_empty() {
            return Ok(report);
        }
        let managed = self.control.list_managed(&prefixes).await?;
        let listing = match &self.source {
            Source::Controller { api, .. } => Some(api.list().await?),
            Source::Couch { .. } => None,
        };
        let mut kept = 0;
        for (name, id) in managed {
            let reason = match self.unwanted(&name, &id, listing.as_ref()).await {
                Ok(r) => r,
                Err(e) => {
                    report
                        .actions
                        .push(self.report(&id, &name, Outcome::Failed, e));
                    continue;
                }
            };
            let Some(reason) = reason else {
                kept += 1;
                continue;
            };
            let outcome = if self.dry_run {
                Ok(())
            } else {
                self.control.delete(&name).await
            };
            report.actions.push(match outcome {
                Ok(()) => self.report(&id, &name, Outcome::Deleted, reason),
                Err(e) => self.report(&id, &name, Outcome::Failed, e.to_string()),
            });
        }
        for r in &report.actions {
            self.metrics.record(r);
        }
        self.metrics.set_managed(kept);
        self.metrics.pass_finished();
        Ok(report)
    }

    /// Why the function `name`, created for action `id`, should go (`None`: keep).
    async fn unwanted(
        &self,
        name: &str,
        id: &str,
        listing: Option<&BTreeMap<String, Listed>>,
    ) -> Result<Option<String>, String> {
        let Some((_, rendered)) = self.target(id) else {
            return Ok(Some("no route maps the action any more".into()));
        };
        if rendered.as_deref().map(short_name) != Ok(name) {
            return Ok(Some("the action's route now names another function".into()));
        }
        let doc = match (&self.source, listing) {
            (_, Some(listing)) => {
                return Ok(match listing.get(id) {
                    None => Some("action deleted".into()),
                    Some(l) if l.kind == "sequence" || l.kind == "blackbox" => {
                        Some(format!("{} actions are not run on Lambda", l.kind))
                    }
                    Some(_) => None,
                });
            }
            (Source::Couch { whisks, .. }, None) => {
                whisks.action(id).await.map_err(|e| e.to_string())?
            }
            (Source::Controller { .. }, None) => return Ok(None),
        };
        Ok(match doc {
            None => Some("action deleted".into()),
            Some(d) => plan::unsupported(&d, &self.cfg),
        })
    }

    /// The literal beginnings of every route's function names: only functions
    /// starting with one of them can be owl's, so only their tags are read.
    fn name_prefixes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .policy
            .routes
            .routes()
            .iter()
            .map(|r| {
                let t = r.function.as_str();
                let literal = t.split('{').next().unwrap_or("");
                literal.rsplit(':').next().unwrap_or("").to_string()
            })
            .collect();
        out.sort();
        out.dedup();
        // An empty prefix (a template starting with a placeholder) covers them all.
        if out.iter().any(String::is_empty) {
            return vec![String::new()];
        }
        out
    }
}

fn failures(r: &Report) -> usize {
    r.actions
        .iter()
        .filter(|a| a.outcome == Outcome::Failed)
        .count()
}

/// The bare function name of a name, ARN or partial ARN.
fn short_name(f: &str) -> &str {
    let parts: Vec<&str> = f.split(':').collect();
    match parts.as_slice() {
        ["arn", _, _, _, _, "function", name, ..] => name,
        [_, "function", name, ..] => name,
        [name, ..] => name,
        [] => f,
    }
}

/// `/metrics` (Prometheus), `/status` (the last outcome of every action, JSON) and
/// `/healthz` for a running `owl sync`.
pub(crate) fn metrics_app(metrics: Arc<Metrics>) -> axum::Router {
    use axum::routing::get;
    let m2 = metrics.clone();
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route(
            "/status",
            get(move || {
                let m = m2.clone();
                async move { axum::Json(m.status_json()) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn function_names_of_arns() {
        assert_eq!(short_name("owl-a"), "owl-a");
        assert_eq!(
            short_name("arn:aws:lambda:us-east-1:123456789012:function:owl-a"),
            "owl-a"
        );
        assert_eq!(
            short_name("arn:aws:lambda:us-east-1:123456789012:function:owl-a:live"),
            "owl-a"
        );
        assert_eq!(short_name("123456789012:function:owl-a"), "owl-a");
    }
}
