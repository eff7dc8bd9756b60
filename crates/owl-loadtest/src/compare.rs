//! `owl bench`: the standard path and the direct path side by side on a real
//! deployment. The same action is invoked (blocking, full activation in the answer)
//! through the OpenWhisk API host and through owl in front of it, whose policy maps
//! the action to Lambda; each answer's activation supplies the platform's own
//! breakdown (waitTime, initTime, duration) beside the client-side latency.

use super::generator::{self, Target};
use super::report::{self, Rep, Row};
use super::stats::Samples;
use anyhow::Context as _;
use base64::Engine as _;
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to compare and how hard to push.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// OpenWhisk API host (the standard path), e.g. `https://openwhisk.example.com`.
    pub standard: String,
    /// owl in front of it (the direct path), e.g. `http://owl.example.com:8080`.
    pub direct: String,
    /// `namespace/action` or `namespace/package/action`.
    pub action: String,
    /// `uuid:key`.
    pub auth: String,
    /// JSON object sent as the action's parameters.
    pub params: String,
    /// Open-loop rate, requests per second.
    pub rate: f64,
    /// Length of each open-loop (and closed-loop) run.
    pub duration: Duration,
    /// Closed-loop connections (0: no closed-loop run).
    pub connections: usize,
    /// Repetitions (sides alternate within each).
    pub repetitions: usize,
    /// Warm-up requests per side before measuring.
    pub warm_up: usize,
}

/// Activation-level figures from the answers, in milliseconds.
#[derive(Debug, Default)]
pub(crate) struct Breakdown {
    /// `waitTime` annotations.
    pub wait: Samples,
    /// `initTime` annotations (cold starts only).
    pub init: Samples,
    /// `duration` fields.
    pub duration: Samples,
    /// Answers seen.
    pub activations: u64,
    /// Answers that were not an activation record.
    pub(crate) unreadable: u64,
}

impl Breakdown {
    /// Reads one blocking-invoke answer.
    pub(crate) fn observe(&mut self, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            self.unreadable += 1;
            return;
        };
        if v.get("activationId").is_none() {
            self.unreadable += 1;
            return;
        }
        self.activations += 1;
        let ms = |v: Option<&Value>| v.and_then(Value::as_u64).map(Duration::from_millis);
        let annotation = |key: &str| {
            v.get("annotations")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|x| x.get("key").and_then(Value::as_str) == Some(key))
                })
                .and_then(|x| x.get("value"))
        };
        if let Some(d) = ms(annotation("waitTime")) {
            self.wait.record(d);
        }
        if let Some(d) = ms(annotation("initTime")) {
            self.init.record(d);
        }
        if let Some(d) = ms(v.get("duration")) {
            self.duration.record(d);
        }
    }
}

fn invoke_url(base: &str, action: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = action.split('/').filter(|s| !s.is_empty()).collect();
    let (ns, name) = match parts.as_slice() {
        [ns, a] => (*ns, a.to_string()),
        [ns, p, a] => (*ns, format!("{p}/{a}")),
        _ => anyhow::bail!("--action must be NAMESPACE/ACTION or NAMESPACE/PACKAGE/ACTION"),
    };
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let name = name.split('/').map(enc).collect::<Vec<_>>().join("/");
    Ok(format!(
        "{}/api/v1/namespaces/{}/actions/{name}?blocking=true",
        base.trim_end_matches('/'),
        enc(ns)
    ))
}

struct Side {
    row: Row,
    target: Target,
    breakdown: Arc<Mutex<Breakdown>>,
}

fn side(name: &str, what: &str, base: &str, o: &CompareOptions) -> anyhow::Result<Side> {
    let url = invoke_url(base, &o.action)?;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&o.auth)
    );
    let breakdown = Arc::new(Mutex::new(Breakdown::default()));
    let seen = breakdown.clone();
    let mut target = Target::post_json(&url, &o.params)
        .with_context(|| format!("bad URL {url}"))?
        .header("authorization", &auth)?;
    target.inspect = Some(Arc::new(move |body| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).observe(body);
    }));
    Ok(Side {
        row: Row::new(name, what),
        target,
        breakdown,
    })
}

/// Runs the comparison and returns the markdown report.
pub async fn compare(o: &CompareOptions) -> anyhow::Result<String> {
    anyhow::ensure!(
        auth_looks_right(&o.auth),
        "--auth must be UUID:KEY (as in ~/.wskprops AUTH)"
    );
    let params: Value = serde_json::from_str(&o.params).context("--params is not JSON")?;
    anyhow::ensure!(params.is_object(), "--params must be a JSON object");
    let mut sides = [
        side(
            "standard",
            "OpenWhisk API (controller → invoker)",
            &o.standard,
            o,
        )?,
        side("direct", "owl → Lambda", &o.direct, o)?,
    ];
    for s in &sides {
        let failed = generator::warm_up(&s.target, o.warm_up).await?;
        anyhow::ensure!(
            failed == 0,
            "{} of {} warm-up requests to the {} path ({}) failed: check the URL, key and action",
            failed,
            o.warm_up,
            s.row.name,
            s.target.url
        );
        // The breakdown covers measured requests only.
        *s.breakdown.lock().unwrap_or_else(|e| e.into_inner()) = Breakdown::default();
    }
    for rep in 0..o.repetitions.max(1) {
        for s in sides.iter_mut() {
            let mut open = generator::open_loop(&s.target, o.rate, o.duration, 10_000).await?;
            open.ensure_clean()
                .with_context(|| format!("{} path, repetition {}", s.row.name, rep + 1))?;
            let mut r = Rep::from_samples(&mut open.latencies);
            s.row.pooled.merge(&open.latencies);
            if o.connections > 0 {
                let closed = generator::closed_loop(&s.target, o.connections, o.duration).await?;
                closed
                    .ensure_clean()
                    .with_context(|| format!("{} path closed loop", s.row.name))?;
                r.throughput = closed.throughput();
            } else {
                r.throughput = f64::NAN;
            }
            s.row.reps.push(r);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## owl bench: {} — standard vs direct\n\nMachine running the load: {}. Open loop at {} req/s for {:?} × {} repetitions{}.\n",
        o.action,
        report::machine_description(),
        o.rate,
        o.duration,
        o.repetitions.max(1),
        if o.connections > 0 {
            format!("; closed loop with {} connections", o.connections)
        } else {
            String::new()
        }
    );
    let rows: Vec<Row> = sides.iter().map(|s| s.row.clone()).collect();
    out.push_str(&report::absolute_table(&rows));
    let (std_p50, dir_p50) = (rows[0].median(|r| r.p50), rows[1].median(|r| r.p50));
    let (std_p99, dir_p99) = (rows[0].median(|r| r.p99), rows[1].median(|r| r.p99));
    let _ = writeln!(
        out,
        "\nThe direct path answers in {:.2}× the standard path's p50 time ({} saved) and {:.2}× its p99.\n",
        dir_p50 / std_p50,
        report::format_us(std_p50 - dir_p50),
        dir_p99 / std_p99
    );
    out.push_str("Activation breakdown (from the records in the answers, ms):\n\n");
    out.push_str("| path | activations | waitTime p50 | waitTime p99 | initTime (cold starts) | duration p50 | duration p99 |\n|---|---|---|---|---|---|---|\n");
    for s in &sides {
        let mut b = s.breakdown.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |d: Option<Duration>| d.map_or_else(|| "—".into(), |d| d.as_millis().to_string());
        let (wait50, wait99) = (ms(b.wait.percentile(50.0)), ms(b.wait.percentile(99.0)));
        let (dur50, dur99) = (
            ms(b.duration.percentile(50.0)),
            ms(b.duration.percentile(99.0)),
        );
        let init = if b.init.is_empty() {
            "none".to_string()
        } else {
            format!("{} × p50 {}", b.init.len(), ms(b.init.percentile(50.0)))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {wait50} | {wait99} | {init} | {dur50} | {dur99} |",
            s.row.name, b.activations,
        );
        if b.unreadable > 0 {
            let _ = writeln!(
                out,
                "\n({} answers on the {} path were not activation records.)",
                b.unreadable, s.row.name
            );
        }
    }
    Ok(out)
}

fn auth_looks_right(auth: &str) -> bool {
    auth.split_once(':')
        .is_some_and(|(u, k)| !u.is_empty() && !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_urls_for_plain_and_packaged_actions() {
        assert_eq!(
            invoke_url("https://ow.example.com/", "guest/hello").unwrap(),
            "https://ow.example.com/api/v1/namespaces/guest/actions/hello?blocking=true"
        );
        assert_eq!(
            invoke_url("http://owl:8080", "guest/pkg/hello world").unwrap(),
            "http://owl:8080/api/v1/namespaces/guest/actions/pkg/hello%20world?blocking=true"
        );
        assert!(invoke_url("http://owl", "hello").is_err());
    }

    #[test]
    fn the_breakdown_reads_activation_annotations() {
        let mut b = Breakdown::default();
        b.observe(br#"{"activationId":"a","duration":12,"annotations":[{"key":"waitTime","value":40},{"key":"initTime","value":300}]}"#);
        b.observe(
            br#"{"activationId":"b","duration":8,"annotations":[{"key":"waitTime","value":20}]}"#,
        );
        b.observe(b"not json");
        b.observe(br#"{"error":"x"}"#);
        assert_eq!(b.activations, 2);
        assert_eq!(b.unreadable, 2);
        assert_eq!(b.wait.percentile(50.0), Some(Duration::from_millis(20)));
        assert_eq!(b.wait.percentile(99.0), Some(Duration::from_millis(40)));
        assert_eq!(b.init.len(), 1);
        assert_eq!(
            b.duration.percentile(100.0),
            Some(Duration::from_millis(12))
        );
    }
}
