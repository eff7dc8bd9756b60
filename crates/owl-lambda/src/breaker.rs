//! Circuit breakers, one per Lambda function: after `breaker_failures` consecutive
//! throttles or service errors the breaker opens and invocations go elsewhere (the
//! controller, or a 503) without calling Lambda; after `breaker_cooldown` one probe is
//! let through (half-open); its success closes the breaker, its failure re-opens it.
//! Function errors are not failures of Lambda: they count as successes here.

use owl_telemetry::{BreakerLabels, Metrics};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_started: Instant },
}

#[derive(Debug, Clone)]
struct Breaker {
    state: State,
    failures: u32,
    route: String,
}

/// What an invocation may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Call Lambda.
    Call,
    /// Call Lambda as the half-open probe.
    Probe,
    /// Do not call Lambda; retry after this long.
    Open(Duration),
}

/// A breaker's state for `/owl/status`.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerStatus {
    /// Function name or ARN.
    pub function: String,
    /// The route's action pattern.
    pub route: String,
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// Consecutive failures counted.
    pub(crate) consecutive_failures: u32,
    /// Seconds until a probe, while open.
    pub(crate) retry_in_s: Option<f64>,
}

/// All breakers (they outlive policy reloads).
pub struct Breakers {
    map: Mutex<HashMap<String, Breaker>>,
    metrics: Arc<Metrics>,
}

impl Breakers {
    /// No breaker open.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn transition(&self, b: &mut Breaker, to: State) {
        let open_before = !matches!(b.state, State::Closed);
        let open_after = !matches!(to, State::Closed);
        b.state = to;
        let label = match to {
            State::Closed => "closed",
            State::Open { .. } => "opened",
            State::HalfOpen { .. } => "half_open",
        };
        self.metrics
            .breaker_transitions
            .get_or_create(&BreakerLabels {
                route: b.route.clone(),
                to: label,
            })
            .inc();
        match (open_before, open_after) {
            (false, true) => {
                self.metrics.breakers_open.inc();
            }
            (true, false) => {
                self.metrics.breakers_open.dec();
            }
            _ => {}
        }
    }

    /// May an invocation of `function` call Lambda now?
    pub fn check(&self, function: &str, cooldown: Duration) -> Permit {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(b) = map.get_mut(function) else {
            return Permit::Call;
        };
        let now = Instant::now();
        match b.state {
            State::Closed => Permit::Call,
            State::Open { until } if now < until => Permit::Open(until - now),
            // A probe that never reported (its task was dropped) is replaced.
            State::HalfOpen { probe_started }
                if now.duration_since(probe_started) < cooldown * 2 =>
            {
                Permit::Open(cooldown)
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                let mut b2 = b.clone();
                self.transition(&mut b2, State::HalfOpen { probe_started: now });
                *b = b2;
                tracing::info!(function, "breaker half-open: probing Lambda");
                Permit::Probe
            }
        }
    }

    /// Records the outcome of a call (`failed`: throttled or a service error).
    pub fn record(
        &self,
        function: &str,
        route: &str,
        failed: bool,
        threshold: u32,
        cooldown: Duration,
    ) {
        if threshold == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if !failed {
            if let Some(b) = map.get_mut(function) {
                if !matches!(b.state, State::Closed) {
                    tracing::info!(function, "breaker closed: Lambda answers again");
                    let mut b2 = b.clone();
                    self.transition(&mut b2, State::Closed);
                    *b = b2;
                }
                b.failures = 0;
            }
            return;
        }
        let b = map.entry(function.to_string()).or_insert_with(|| Breaker {
            state: State::Closed,
            failures: 0,
            route: route.to_string(),
        });
        b.failures += 1;
        let reopen = matches!(b.state, State::HalfOpen { .. })
            || (matches!(b.state, State::Closed) && b.failures >= threshold);
        if reopen {
            tracing::warn!(
                function,
                failures = b.failures,
                ?cooldown,
                "breaker open: invocations go elsewhere"
            );
            let mut b2 = b.clone();
            self.transition(
                &mut b2,
                State::Open {
                    until: Instant::now() + cooldown,
                },
            );
            *b = b2;
        }
    }

    /// Every breaker that is not closed, or has counted failures.
    pub fn status(&self) -> Vec<BreakerStatus> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut out: Vec<BreakerStatus> = map
            .iter()
            .map(|(f, b)| BreakerStatus {
                function: f.clone(),
                route: b.route.clone(),
                state: match b.state {
                    State::Closed => "closed",
                    State::Open { .. } => "open",
                    State::HalfOpen { .. } => "half_open",
                },
                consecutive_failures: b.failures,
                retry_in_s: match b.state {
                    State::Open { until } => {
                        Some(until.saturating_duration_since(now).as_secs_f64())
                    }
                    _ => None,
                },
            })
            .collect();
        out.sort_by(|a, b| a.function.cmp(&b.function));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_probes_and_closes() {
        let b = Breakers::new(Arc::new(Metrics::new()));
        let cd = Duration::from_millis(50);
        for _ in 0..2 {
            assert_eq!(b.check("f", cd), Permit::Call);
            b.record("f", "r", true, 3, cd);
        }
        b.record("f", "r", false, 3, cd); // a success resets the count
        for _ in 0..3 {
            b.record("f", "r", true, 3, cd);
        }
        assert!(matches!(b.check("f", cd), Permit::Open(_)));
        std::thread::sleep(cd + Duration::from_millis(10));
        assert_eq!(b.check("f", cd), Permit::Probe);
        assert!(
            matches!(b.check("f", cd), Permit::Open(_)),
            "one probe at a time"
        );
        b.record("f", "r", true, 3, cd); // the probe failed
        assert!(matches!(b.check("f", cd), Permit::Open(_)));
        std::thread::sleep(cd + Duration::from_millis(10));
        assert_eq!(b.check("f", cd), Permit::Probe);
        b.record("f", "r", false, 3, cd);
        assert_eq!(b.check("f", cd), Permit::Call);
        assert_eq!(b.status()[0].state, "closed");
    }

    #[test]
    fn threshold_zero_disables() {
        let b = Breakers::new(Arc::new(Metrics::new()));
        for _ in 0..100 {
            b.record("f", "r", true, 0, Duration::from_secs(1));
        }
        assert_eq!(b.check("f", Duration::from_secs(1)), Permit::Call);
    }
}
