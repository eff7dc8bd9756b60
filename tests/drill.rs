//! The fault drill (issue 20): three `owl serve` replicas sharing Redis (throttles)
//! and a CouchDB (identities, action metadata, activation records), in front of the
//! stand-in controller and a Lambda endpoint, with load running while faults are
//! injected one after another. Then it checks what docs/reliability.md promises and
//! prints the figures as a table:
//!
//! - every activation id a client received is readable afterwards through every
//!   replica (zero lost);
//! - no answer is a 5xx, and no request fails, except what that document allows for
//!   the fault running at the time;
//! - the rate limit of a namespace holds cluster-wide in every calendar minute,
//!   across Redis's restart, within the stated bound;
//! - how long each fault took to recover from; no replica crashed; memory before and
//!   after.
//!
//! Short form (run by the test command): each fault lasts `OWL_DRILL_FAULT` (3 s).
//! Long form: `tests/drill --soak 30m` repeats the cycle of faults, 10 s each, for
//! that long (`OWL_DRILL_SOAK`); the report also goes to `target/tmp/drill/report.md`.

mod common;

use common::fake_lambda::{FakeLambda, Fault};
use common::openwhisk_db::OpenWhiskDbs;
use common::owl_process::OwlProcess;
use common::switch::Switch;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// The throttled namespace's limit per minute, and its offered rate.
const ALICE_LIMIT: u64 = 40;
const ALICE_KEY: &str = "a1a1a1a1-a1a1-4a1a-8a1a-a1a1a1a1a1a1:DrillKeyDrillKeyDrillKeyDrillKeyDrillKeyDrillKeyDrillKeyDrillKey";
/// Offered load: invocations per second on `guest` (unthrottled in practice) and on
/// `alice` (three times its limit).
const GUEST_RATE: f64 = 8.0;
/// The label of the kill -9 fault.
const KILL: &str = "kill -9 of a replica";
/// The label of the CouchDB outage.
const COUCHDB: &str = "CouchDB stopped";
const ALICE_RATE: f64 = 2.0;

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One answer a client got (or the failure it saw instead).
#[derive(Debug, Clone)]
struct Answer {
    /// When the request was sent (epoch ms).
    sent: u64,
    namespace: &'static str,
    status: Option<u16>,
    activation_id: Option<String>,
    error: Option<String>,
    /// The fault running when the request was sent.
    fault: &'static str,
    /// The fault running when the answer (or the failure) came.
    fault_at_answer: &'static str,
}

/// What the clients saw.
#[derive(Default)]
struct Log {
    answers: Vec<Answer>,
}

/// The replicas' current URLs (a restarted replica gets new ports), as a load
/// balancer would know them.
type Targets = Arc<RwLock<Vec<Option<String>>>>;

struct Replica {
    policy: PathBuf,
    process: Option<OwlProcess>,
    restarts: u32,
}

struct Cluster {
    replicas: Vec<Replica>,
    targets: Targets,
}

impl Cluster {
    async fn start_replica(&mut self, i: usize) {
        let p = OwlProcess::start(&self.replicas[i].policy).await;
        self.targets.write().unwrap()[i] = Some(p.url.clone());
        self.replicas[i].process = Some(p);
    }

    /// Takes replica `i` out of the load balancer's set.
    fn unroute(&self, i: usize) {
        self.targets.write().unwrap()[i] = None;
    }

    fn process(&self, i: usize) -> &OwlProcess {
        self.replicas[i].process.as_ref().unwrap()
    }

    fn urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .filter_map(|r| r.process.as_ref().map(|p| p.url.clone()))
            .collect()
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn parse_duration(s: &str) -> Duration {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().expect("a duration like 30m, 90s or 2h");
    match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        "h" => Duration::from_secs(3600 * n),
        _ => panic!("a duration like 30m, 90s or 2h"),
    }
}

/// One client request, retried on the next replica when a connection cannot be
/// made (as a load balancer does), never once a request was sent.
async fn send(
    client: &reqwest::Client,
    targets: &Targets,
    start: usize,
    namespace: &'static str,
    auth: &str,
    blocking: bool,
    fault: &'static str,
) -> Answer {
    let sent = epoch_ms();
    let mut answer = Answer {
        sent,
        namespace,
        status: None,
        activation_id: None,
        error: None,
        fault,
        fault_at_answer: fault,
    };
    let urls: Vec<Option<String>> = targets.read().unwrap().clone();
    for k in 0..urls.len() {
        let Some(base) = &urls[(start + k) % urls.len()] else {
            continue;
        };
        let url = format!(
            "{base}/api/v1/namespaces/{namespace}/actions/drill{}",
            if blocking { "?blocking=true" } else { "" }
        );
        match client
            .post(&url)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(r#"{"drill":true}"#)
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                let header_id = r
                    .headers()
                    .get("x-openwhisk-activation-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body: Value = r.json().await.unwrap_or(Value::Null);
                answer.status = Some(status);
                answer.activation_id = header_id.or_else(|| {
                    body.get("activationId")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                if status >= 500 {
                    answer.error = Some(body.to_string());
                }
                return answer;
            }
            Err(e) if e.is_connect() => continue,
            Err(e) => {
                answer.error = Some(format!("{e}"));
                return answer;
            }
        }
    }
    answer.error = Some("no replica accepted a connection".into());
    answer
}

/// Open-loop load: one request every 1/`rate` s on `namespace`, alternating blocking
/// and non-blocking, spread round-robin over the replicas.
fn load(
    targets: Targets,
    log: Arc<Mutex<Log>>,
    fault: Arc<Mutex<&'static str>>,
    namespace: &'static str,
    auth: String,
    rate: f64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let mut n = 0usize;
        let mut inflight = tokio::task::JoinSet::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            tick.tick().await;
            let (client, targets, log, auth) =
                (client.clone(), targets.clone(), log.clone(), auth.clone());
            let label = *fault.lock().unwrap();
            let blocking = n.is_multiple_of(2);
            let start = n;
            let now = fault.clone();
            inflight.spawn(async move {
                let mut a = send(&client, &targets, start, namespace, &auth, blocking, label).await;
                a.fault_at_answer = *now.lock().unwrap();
                log.lock().unwrap().answers.push(a);
            });
            n += 1;
            while inflight.try_join_next().is_some() {}
        }
        while inflight.join_next().await.is_some() {}
    })
}

/// A fault's window, for the report.
struct Window {
    label: &'static str,
    /// When it began and ended (epoch ms).
    start: u64,
    end: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill() {
    let soak = std::env::var("OWL_DRILL_SOAK")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| parse_duration(&s));
    let fault_for = std::env::var("OWL_DRILL_FAULT")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| parse_duration(&s))
        .unwrap_or(if soak.is_some() {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(3)
        });

    // OpenWhisk's CouchDB, behind a switch for its outage.
    let couch = couchdb().await;
    let dbs = OpenWhiskDbs::create(couch).await;
    let (alice_uuid, alice_secret) = ALICE_KEY.split_once(':').unwrap();
    dbs.subject("guest@example.com", "guest", GUEST_UUID, GUEST_KEY, false)
        .await;
    dbs.subject(
        "alice@example.com",
        "alice",
        alice_uuid,
        alice_secret,
        false,
    )
    .await;
    dbs.limits("alice", json!({"invocationsPerMinute": ALICE_LIMIT}))
        .await;
    dbs.limits(
        "guest",
        json!({"invocationsPerMinute": 100_000, "concurrentInvocations": 1000}),
    )
    .await;
    dbs.action("guest/drill", json!([]), json!([])).await;
    dbs.action("alice/drill", json!([]), json!([])).await;
    let activations = couch.fresh_db("whisk_test_activations_").await;
    let couch_switch = Switch::in_front_of(&couch.url).await;

    // The controller reads the activations database directly (its own CouchDB
    // connection is not part of the CouchDB fault), behind a switch of its own.
    let reader = owl::couchdb::CouchDb::new(&owl::policy::CouchDbConfig {
        url: couch.url.parse().unwrap(),
        ca_file: None,
        accept_invalid_certs: false,
        username: None,
        password_file: None,
        db_prefix: "whisk_local_".into(),
        activations_db: activations.clone(),
        subjects_db: dbs.subjects.clone(),
        whisks_db: dbs.whisks.clone(),
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let controller = StandinBuilder::with_guest()
        .identity("alice@example.com", "alice", alice_uuid, alice_secret)
        .action(StandinAction::new("guest/drill", Behaviour::Echo))
        .action(StandinAction::new("alice/drill", Behaviour::Echo))
        .activations_from_couchdb(reader, &activations)
        .spawn()
        .await
        .unwrap();
    let controller_switch = Switch::in_front_of(&controller.url()).await;
    let lambda =
        FakeLambda::start(Fault::Delay(Duration::from_millis(20), json!({"ok": true}))).await;
    let mut redis = RedisServer::start().await;

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let base = policy(
        &controller_switch.url,
        &lambda.url,
        &format!(
            r#"
[[route]]
action = "*/drill"
function = "drill-{{namespace}}"

[server]
shutdown_delay = "1s"
drain_timeout = "20s"

[auth]
source = "couchdb"

[metadata]
source = "couchdb"

[activations]
store = "couchdb"
write_retry = "2s"

[limits]
backend = "redis"
redis_url = "{}"
on_redis_error = "local"
lease = "3s"

[couchdb]
url = "{}"
subjects_db = "{}"
whisks_db = "{}"
activations_db = "{activations}"
timeout = "2s"
"#,
            redis.url(),
            couch_switch.url,
            dbs.subjects,
            dbs.whisks,
        ),
    );
    let mut cluster = Cluster {
        replicas: Vec::new(),
        targets: Arc::new(RwLock::new(vec![None, None, None])),
    };
    for i in 0..3 {
        let policy = dir.path().join(format!("replica-{i}.toml"));
        std::fs::write(
            &policy,
            base.replace(
                "[activations]\n",
                &format!(
                    "[activations]\ndata_dir = \"{}\"\n",
                    dir.path().join(format!("data-{i}")).display()
                ),
            ),
        )
        .unwrap();
        cluster.replicas.push(Replica {
            policy,
            process: None,
            restarts: 0,
        });
        cluster.start_replica(i).await;
    }
    // Every replica counts the others before the first fault.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let untouched = 2; // replica 2 is never killed or stopped: its memory is tracked
    let rss_before = rss_kib(cluster.process(untouched).child.id());

    let log = Arc::new(Mutex::new(Log::default()));
    let fault = Arc::new(Mutex::new("none"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loads = vec![
        load(
            cluster.targets.clone(),
            log.clone(),
            fault.clone(),
            "guest",
            guest_auth(),
            GUEST_RATE,
            stop.clone(),
        ),
        load(
            cluster.targets.clone(),
            log.clone(),
            fault.clone(),
            "alice",
            basic(ALICE_KEY),
            ALICE_RATE,
            stop.clone(),
        ),
    ];
    let started = Instant::now();
    let gap = Duration::from_secs(2).max(fault_for / 2);
    tokio::time::sleep(gap).await;

    let mut windows = Vec::new();
    let mut cycles = 0;
    loop {
        cycles += 1;
        // 1. kill -9 of a replica, started again after the fault's time.
        let w = begin(&fault, KILL);
        {
            let p = cluster.replicas[0].process.as_mut().unwrap();
            p.child.kill().unwrap();
            p.child.wait().unwrap();
        }
        cluster.unroute(0);
        cluster.replicas[0].process = None;
        tokio::time::sleep(fault_for).await;
        cluster.start_replica(0).await;
        cluster.replicas[0].restarts += 1;
        windows.push(end(&fault, w));
        tokio::time::sleep(gap).await;

        // 2. SIGTERM of a replica: it drains; started again afterwards.
        let w = begin(&fault, "SIGTERM of a replica (drain)");
        // Its readiness fails at once: the load balancer stops sending it requests;
        // those in flight finish.
        cluster.unroute(1);
        cluster.process(1).signal("TERM");
        let exit = cluster.replicas[1]
            .process
            .as_mut()
            .unwrap()
            .exited(Duration::from_secs(60))
            .await;
        assert!(exit.success(), "a drained replica exits 0: {exit}");
        cluster.replicas[1].process = None;
        tokio::time::sleep(fault_for).await;
        cluster.start_replica(1).await;
        cluster.replicas[1].restarts += 1;
        windows.push(end(&fault, w));
        tokio::time::sleep(gap).await;

        // 3. Redis stopped, then restarted (empty).
        let w = begin(&fault, "Redis stopped");
        redis.kill();
        tokio::time::sleep(fault_for).await;
        redis.restart().await;
        windows.push(end(&fault, w));
        tokio::time::sleep(gap).await;

        // 4. CouchDB stopped.
        let w = begin(&fault, COUCHDB);
        couch_switch.off();
        tokio::time::sleep(fault_for).await;
        couch_switch.on();
        windows.push(end(&fault, w));
        tokio::time::sleep(gap).await;

        // 5. The controller stopped.
        let w = begin(&fault, "controller stopped");
        controller_switch.off();
        tokio::time::sleep(fault_for).await;
        controller_switch.on();
        windows.push(end(&fault, w));
        tokio::time::sleep(gap).await;

        // 6. Lambda throttling every call.
        let w = begin(&fault, "Lambda throttling every call");
        lambda.set(Fault::Throttle {
            reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
            retry_after: None,
        });
        tokio::time::sleep(fault_for).await;
        lambda.set(Fault::Delay(Duration::from_millis(20), json!({"ok": true})));
        windows.push(end(&fault, w));
        tokio::time::sleep(gap).await;

        // 7. A policy reload on every replica.
        let w = begin(&fault, "policy reload on every replica");
        for i in 0..3 {
            cluster.process(i).signal("HUP");
        }
        tokio::time::sleep(fault_for).await;
        windows.push(end(&fault, w));
        tokio::time::sleep(gap).await;

        match soak {
            Some(d) if started.elapsed() < d => continue,
            _ => break,
        }
    }

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for l in loads {
        l.await.unwrap();
    }
    let answers = std::mem::take(&mut log.lock().unwrap().answers);
    let rss_after = rss_kib(cluster.process(untouched).child.id());

    // No replica crashed: each one still running answers /healthz.
    for (i, r) in cluster.replicas.iter_mut().enumerate() {
        let p = r.process.as_mut().unwrap();
        assert!(
            p.child.try_wait().unwrap().is_none(),
            "replica {i} is still running"
        );
    }

    // Zero lost: every id any client received is readable through every replica.
    // Every (id, replica) pair is read once, 16 at a time; those not readable yet are
    // read again until a minute has passed (records deferred by an outage arrive).
    let ids: Vec<(&'static str, String)> = answers
        .iter()
        .filter_map(|a| a.activation_id.clone().map(|id| (a.namespace, id)))
        .collect();
    let urls = cluster.urls();
    let checker = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut missing: Vec<(&'static str, String, String)> = ids
        .iter()
        .flat_map(|(ns, id)| urls.iter().map(move |u| (*ns, id.clone(), u.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reads = futures_util::stream::iter(missing.drain(..).map(|(ns, id, url)| {
            let checker = checker.clone();
            async move {
                let auth = if ns == "alice" {
                    basic(ALICE_KEY)
                } else {
                    guest_auth()
                };
                let r = checker
                    .get(format!("{url}/api/v1/namespaces/_/activations/{id}"))
                    .header("authorization", &auth)
                    .send()
                    .await;
                let record = match r {
                    Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                    _ => None,
                };
                (ns, id, url, record)
            }
        }));
        let results: Vec<_> =
            futures_util::StreamExt::collect(futures_util::StreamExt::buffer_unordered(reads, 16))
                .await;
        for (ns, id, url, record) in results {
            match record {
                Some(rec) if rec["activationId"] == id.as_str() => {}
                _ => missing.push((ns, id, url)),
            }
        }
        if missing.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let lost: Vec<(&'static str, String, String)> = missing;

    // Answers by fault: 5xx and failed requests.
    let mut by_fault: BTreeMap<&'static str, (usize, usize, usize, usize, usize)> = BTreeMap::new();
    for a in &answers {
        let e = by_fault.entry(a.fault).or_default();
        e.0 += 1;
        if a.activation_id.is_some() {
            e.1 += 1;
        }
        match a.status {
            Some(s) if s >= 500 => e.2 += 1,
            Some(429) => e.3 += 1,
            None => e.4 += 1,
            _ => {}
        }
    }

    // Throttle: attempts alice was admitted per calendar minute (by send time).
    let mut per_minute: BTreeMap<u64, u64> = BTreeMap::new();
    // Only what owl admitted: an invocation Lambda refused goes to the controller
    // (`fallback = "controller"`), which counts it against its own limit, as
    // OpenWhisk counts every invocation the controller runs (docs/operations.md,
    // "How this relates to the controller's counters").
    for a in answers.iter().filter(|a| a.namespace == "alice") {
        if matches!(a.status, Some(s) if s != 429 && s < 500) {
            *per_minute.entry(a.sent / 60_000).or_default() += 1;
        }
    }
    let mut to_controller: BTreeMap<u64, u64> = BTreeMap::new();
    for act in controller.activations() {
        if act.namespace == "alice" {
            *to_controller.entry(act.start as u64 / 60_000).or_default() += 1;
        }
    }
    for (minute, n) in &to_controller {
        if let Some(m) = per_minute.get_mut(minute) {
            *m = m.saturating_sub(*n);
        }
    }
    // docs/reliability.md: within the limit plus OpenWhisk's own 20 % overcommit
    // allowance and one attempt per replica at a minute's edge.
    let bound = ALICE_LIMIT + ALICE_LIMIT / 5 + 3;

    // Recovery: from a fault's end to the first successful answer sent after it.
    let recovery: Vec<(&'static str, Option<u64>)> = windows
        .iter()
        .map(|w| {
            (
                w.label,
                answers
                    .iter()
                    .filter(|a| a.sent >= w.end && matches!(a.status, Some(200 | 202)))
                    .map(|a| a.sent - w.end)
                    .min(),
            )
        })
        .collect();

    let mut report = String::new();
    report.push_str(&format!(
        "Drill: 3 replicas, {cycles} cycle(s) of faults of {fault_for:?}, {:.0} s in all; load {GUEST_RATE}/s on `guest`, {ALICE_RATE}/s on `alice` (limit {ALICE_LIMIT}/min).\n\n",
        started.elapsed().as_secs_f64()
    ));
    report.push_str("| fault running when sent | requests | ids received | 5xx | 429 | failed (no answer) | recovery after the fault |\n|---|---|---|---|---|---|---|\n");
    for (label, (n, ids, s5, s429, failed)) in &by_fault {
        let rec = recovery
            .iter()
            .filter(|(l, _)| l == label)
            .filter_map(|(_, r)| *r)
            .max()
            .map_or("—".to_string(), |ms| format!("{ms} ms"));
        report.push_str(&format!(
            "| {label} | {n} | {ids} | {s5} | {s429} | {failed} | {rec} |\n"
        ));
    }
    report.push_str(&format!(
        "\nActivation ids received: {}; readable through every replica afterwards: {} (lost: {}).\n",
        ids.len(),
        ids.len() - lost.iter().map(|l| &l.1).collect::<std::collections::HashSet<_>>().len(),
        lost.len()
    ));
    report.push_str(&format!(
        "`alice` admitted by owl per calendar minute (minute, count): {:?} (limit {ALICE_LIMIT}, bound {bound}); run by the controller after Lambda refused them (its own throttle's to count): {:?}.\n",
        per_minute.iter().collect::<Vec<_>>(),
        to_controller.iter().collect::<Vec<_>>()
    ));
    // Which faults ran in which calendar minute (to read the throttle's figures).
    let mut faults_by_minute: BTreeMap<u64, Vec<&'static str>> = BTreeMap::new();
    for w in &windows {
        for minute in w.start / 60_000..=w.end / 60_000 {
            faults_by_minute.entry(minute).or_default().push(w.label);
        }
    }
    report.push_str(&format!("Faults by minute: {faults_by_minute:?}\n"));
    // 5xx answers, by status and text.
    let mut errors: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for a in answers
        .iter()
        .filter(|a| matches!(a.status, Some(s) if s >= 500))
    {
        let text = a.error.clone().unwrap_or_default();
        let text = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        *errors
            .entry((a.status.unwrap_or(0), format!("{} ({})", text, a.fault)))
            .or_default() += 1;
    }
    for ((status, text), n) in &errors {
        report.push_str(&format!("5xx: {n} × {status} {text}\n"));
    }
    report.push_str(&format!(
        "Memory of the replica never restarted: {} KiB before, {} KiB after. Restarts: {}.\n",
        rss_before.unwrap_or(0),
        rss_after.unwrap_or(0),
        cluster
            .replicas
            .iter()
            .map(|r| r.restarts.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    println!("\n{report}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("drill");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("report.md"), &report);

    assert!(lost.is_empty(), "lost activations: {lost:?}\n{report}");
    let bad: Vec<&Answer> = answers
        .iter()
        .filter(|a| match a.status {
            // docs/reliability.md: while CouchDB is down, a request whose identity or
            // action metadata the replica has not cached (a replica restarted since,
            // or one that only ever throttled the namespace) cannot be checked, and
            // gets OpenWhisk's 503.
            Some(503)
                if (a.fault == COUCHDB || a.fault_at_answer == COUCHDB)
                    && a.error
                        .as_deref()
                        .is_some_and(|e| e.contains(owl::whisk::messages::SERVICE_UNAVAILABLE)) =>
            {
                false
            }
            Some(s) => s >= 500,
            // A request in flight on a replica killed with -9 loses its answer (never
            // its activation: no id was given).
            None => a.fault != KILL && a.fault_at_answer != KILL,
        })
        .collect();
    assert!(bad.is_empty(), "unexpected failures: {bad:#?}\n{report}");
    for (minute, n) in &per_minute {
        assert!(
            *n <= bound,
            "alice admitted {n} in minute {minute} (bound {bound})\n{report}"
        );
    }
}

fn begin(fault: &Arc<Mutex<&'static str>>, label: &'static str) -> Window {
    *fault.lock().unwrap() = label;
    Window {
        label,
        start: epoch_ms(),
        end: 0,
    }
}

fn end(fault: &Arc<Mutex<&'static str>>, mut w: Window) -> Window {
    *fault.lock().unwrap() = "none";
    w.end = epoch_ms();
    w
}
