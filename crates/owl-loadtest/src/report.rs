//! Presenting a run: per-configuration rows built from repetitions (medians and
//! spreads), markdown tables, the machine's description, and an SVG chart of latency
//! percentiles.

use super::stats::{Samples, median, spread};
use std::fmt::Write as _;
use std::time::Duration;

/// What one repetition of one configuration measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rep {
    /// Open-loop latency percentiles, µs.
    pub p50: f64,
    /// 90th percentile, µs.
    pub(crate) p90: f64,
    /// 99th percentile, µs.
    pub p99: f64,
    /// Largest latency, µs.
    pub max: f64,
    /// Closed-loop throughput, requests/s.
    pub throughput: f64,
    /// CPU time of the process under test per request, µs (closed loop).
    pub cpu_per_request: Option<f64>,
}

impl Rep {
    /// The latency part of a repetition from open-loop samples.
    pub fn from_samples(samples: &mut Samples) -> Self {
        let us = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e6).unwrap_or(f64::NAN);
        Self {
            p50: us(samples.percentile(50.0)),
            p90: us(samples.percentile(90.0)),
            p99: us(samples.percentile(99.0)),
            max: us(samples.max()),
            ..Default::default()
        }
    }
}

/// All repetitions of one configuration.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Short name (e.g. `L1`).
    pub name: String,
    /// What the configuration is.
    pub what: String,
    /// Repetitions.
    pub reps: Vec<Rep>,
    /// Open-loop latencies of every repetition, pooled (for the chart).
    pub pooled: Samples,
}

impl Row {
    /// A row without repetitions yet.
    pub fn new(name: &str, what: &str) -> Self {
        Self {
            name: name.into(),
            what: what.into(),
            ..Default::default()
        }
    }

    /// Median over repetitions of `f`.
    pub(crate) fn median(&self, f: impl Fn(&Rep) -> f64) -> f64 {
        median(&self.reps.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    }

    /// Median over repetitions of an optional figure.
    pub(crate) fn median_opt(&self, f: impl Fn(&Rep) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.reps.iter().filter_map(f).collect();
        median(&v)
    }

    /// "median (min–max)" of `f`, formatted with `digits` decimals.
    pub(crate) fn with_spread(&self, f: impl Fn(&Rep) -> f64 + Copy, digits: usize) -> String {
        let v: Vec<f64> = self.reps.iter().map(f).collect();
        match (median(&v), spread(&v)) {
            (Some(m), Some((lo, hi))) if self.reps.len() > 1 => {
                format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})")
            }
            (Some(m), _) => format!("{m:.digits$}"),
            _ => "—".into(),
        }
    }
}

/// The absolute-figures table: latency percentiles (open loop), maximum throughput
/// (closed loop) and CPU per request, medians over repetitions with their spread.
pub fn absolute_table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| level | path | p50 µs | p90 µs | p99 µs | max µs | max throughput req/s | CPU µs/req |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let cpu = r
            .median_opt(|x| x.cpu_per_request)
            .map(|c| format!("{c:.1}"))
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {:.0} | {} | {cpu} |",
            r.name,
            r.what,
            r.with_spread(|x| x.p50, 0),
            r.median(|x| x.p90),
            r.with_spread(|x| x.p99, 0),
            r.median(|x| x.max),
            r.with_spread(|x| x.throughput, 0),
        );
    }
    out
}

/// The performance reference's targets for the ladder, as ratios to L1 (the bare
/// proxy): `(metric, level, bound, at_most)`.
pub(crate) const LADDER_TARGETS: [(&str, &str, f64, bool); 8] = [
    ("added p50", "L2", 1.25, true),
    ("added p99", "L2", 1.5, true),
    ("throughput", "L2", 0.8, false),
    ("CPU/request", "L2", 1.25, true),
    ("added p50", "L3", 2.0, true),
    ("added p99", "L3", 3.0, true),
    ("throughput", "L3", 0.5, false),
    ("CPU/request", "L3", 2.0, true),
];

/// The ladder's ratio tables: every level above L1 as a ratio to L1, checked against
/// [`LADDER_TARGETS`], and owl's proxy path (L2) against nginx (L2n). "Added"
/// latency is a level's median minus L0's (minus the Lambda service time for L3);
/// throughput and CPU per request are compared as they are. A target is met when the
/// ratio as printed (two decimals) is within its bound. `None` without L0 and L1.
pub fn ladder_ratios(rows: &[Row], service_time_us: f64) -> Option<String> {
    let find = |n: &str| rows.iter().find(|r| r.name == n);
    let (l0, l1) = (find("L0")?, find("L1")?);
    let added = |r: &Row, f: fn(&Rep) -> f64| {
        let extra = if r.name.starts_with("L3") {
            service_time_us
        } else {
            0.0
        };
        r.median(f) - l0.median(f) - extra
    };
    let metric = |r: &Row, m: &str| -> Option<f64> {
        match m {
            "added p50" => Some(added(r, |x| x.p50)),
            "added p99" => Some(added(r, |x| x.p99)),
            "throughput" => Some(r.median(|x| x.throughput)),
            "CPU/request" => r.median_opt(|x| x.cpu_per_request),
            _ => None,
        }
    };
    let ratio_of = |a: &Row, b: &Row, m: &str| {
        metric(a, m)
            .zip(metric(b, m))
            .and_then(|(x, y)| super::stats::ratio(x, y))
            .map(|v| (v * 100.0).round() / 100.0)
    };
    let verdict = |v: f64, bound: f64, at_most: bool| {
        let ok = if at_most { v <= bound } else { v >= bound };
        if ok { "✅" } else { "❌" }
    };
    let mut out = String::from(
        "\nRatios to L1 (the bare proxy), against the targets of the performance reference:\n\n| level | added p50 | added p99 | max throughput | CPU per request |\n|---|---|---|---|---|\n",
    );
    for r in rows.iter().filter(|r| r.name != "L0" && r.name != "L1") {
        let mut cells = Vec::new();
        for m in ["added p50", "added p99", "throughput", "CPU/request"] {
            let target = LADDER_TARGETS
                .iter()
                .find(|(tm, tl, _, _)| *tm == m && *tl == r.name);
            cells.push(match (ratio_of(r, l1, m), target) {
                (Some(v), Some((_, _, bound, at_most))) => format!(
                    "{v:.2}× {} ({}{bound}×)",
                    verdict(v, *bound, *at_most),
                    if *at_most { "≤ " } else { "≥ " }
                ),
                (Some(v), None) => format!("{v:.2}×"),
                (None, _) => "—".into(),
            });
        }
        let _ = writeln!(out, "| {} | {} |", r.name, cells.join(" | "));
    }
    if let (Some(l2), Some(l2n)) = (find("L2"), find("L2n")) {
        let cell = |m: &str, at_most: bool| match ratio_of(l2, l2n, m) {
            Some(v) => format!("{v:.2}× {}", verdict(v, 1.0, at_most)),
            None => "—".into(),
        };
        let _ = writeln!(
            out,
            "\nowl's proxy path against nginx (L2 / L2n; targets ≤ 1.0×, ≤ 1.0×, ≥ 1.0×): added p50 {}, added p99 {}, max throughput {}.",
            cell("added p50", true),
            cell("added p99", true),
            cell("throughput", false)
        );
    }
    Some(out)
}

/// A short description of this machine for a report.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU")
        .to_string();
    // Counted from cpuinfo: this process may be pinned to fewer cores than there are.
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
        .max(1);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown kernel".into());
    let mem = mem_gib.map_or_else(|| "? GiB".into(), |g| format!("{g:.0} GiB"));
    format!("{cores} × {model}, {mem} RAM, Linux {kernel}")
}

/// Palette for chart series.
const COLOURS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f", "#edc948",
];

/// An SVG chart of latency by percentile (x: 0 … 99.99 on a "nines" scale; y: latency
/// on a log scale), one line per series.
pub fn percentile_chart(title: &str, series: &mut [(String, Samples)]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 420.0;
    const L: f64 = 70.0; // left margin
    const R: f64 = 170.0; // right margin (legend)
    const T: f64 = 40.0;
    const B: f64 = 50.0;
    const NINES: f64 = 4.0; // up to 99.99
    let pw = W - L - R;
    let ph = H - T - B;
    // Percentile p ↦ number of nines q = -log10(1 - p/100); sampled evenly in q.
    let qs: Vec<f64> = (0..=200).map(|i| NINES * i as f64 / 200.0).collect();
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (name, samples) in series.iter_mut() {
        let mut pts = Vec::new();
        for &q in &qs {
            let p = 100.0 * (1.0 - 10f64.powf(-q));
            if let Some(d) = samples.percentile(p.min(100.0)) {
                pts.push((q, (d.as_secs_f64() * 1e6).max(1.0)));
            }
        }
        curves.push((name.clone(), pts));
    }
    let all = curves.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let (lo, hi) = all.fold((f64::INFINITY, 1.0f64), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    let lo_dec = if lo.is_finite() {
        lo.log10().floor()
    } else {
        0.0
    };
    let hi_dec = hi.log10().ceil().max(lo_dec + 1.0);
    let x = |q: f64| L + pw * q / NINES;
    let y = |us: f64| T + ph * (1.0 - (us.log10() - lo_dec) / (hi_dec - lo_dec));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        L + pw / 2.0,
        xml_escape(title)
    );
    // Horizontal grid: 1-2-5 per decade.
    let mut dec = lo_dec;
    while dec <= hi_dec {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(dec);
            if v.log10() > hi_dec + 1e-9 {
                break;
            }
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                L + pw,
                L - 6.0,
                yy + 4.0,
                format_us(v)
            );
        }
        dec += 1.0;
    }
    for (q, label) in [
        (0.0, "0"),
        (1.0, "90"),
        (2.0, "99"),
        (3.0, "99.9"),
        (4.0, "99.99"),
    ] {
        let xx = x(q);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{T}" y2="{}" stroke="#ddd"/><text x="{xx:.1}" y="{}" text-anchor="middle">{label}</text>"##,
            T + ph,
            T + ph + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">latency (log scale)</text>"#,
        L + pw / 2.0,
        H - 10.0,
        T + ph / 2.0,
        T + ph / 2.0
    );
    for (i, (name, pts)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(q, us)| format!("{:.1},{:.1}", x(q), y(us)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = T + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            W - R + 15.0,
            W - R + 40.0,
            W - R + 46.0,
            ly + 4.0,
            xml_escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// `850 µs`, `1.2 ms`, `2 s`.
pub(crate) fn format_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", trim(us / 1e6))
    } else if us >= 1e3 {
        format!("{} ms", trim(us / 1e3))
    } else {
        format!("{} µs", trim(us))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(p50: f64, tp: f64) -> Rep {
        Rep {
            p50,
            p90: p50 * 2.0,
            p99: p50 * 3.0,
            max: p50 * 4.0,
            throughput: tp,
            cpu_per_request: Some(10.0),
        }
    }

    #[test]
    fn rows_report_medians_with_their_spread() {
        let mut row = Row::new("L1", "bare proxy");
        row.reps = vec![rep(100.0, 900.0), rep(300.0, 1100.0), rep(200.0, 1000.0)];
        assert_eq!(row.median(|r| r.p50), 200.0);
        assert_eq!(row.with_spread(|r| r.p50, 0), "200 (100–300)");
        let table = absolute_table(&[row]);
        assert!(
            table.contains("| L1 | bare proxy | 200 (100–300) | 400 | 600 (300–900) | 800 | 1000 (900–1100) | 10.0 |"),
            "{table}"
        );
    }

    #[test]
    fn the_chart_has_one_line_per_series_within_the_plot() {
        let mut a = Samples::new();
        let mut b = Samples::new();
        for i in 1..=1000u64 {
            a.record(Duration::from_micros(100 + i));
            b.record(Duration::from_micros(200 + 3 * i));
        }
        let svg = percentile_chart("ladder <test>", &mut [("L0".into(), a), ("L1".into(), b)]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("ladder &lt;test&gt;"));
        // Every plotted point lies inside the plot area.
        for line in svg.lines().filter(|l| l.starts_with("<polyline")) {
            let pts = line
                .split("points=\"")
                .nth(1)
                .unwrap()
                .trim_end_matches("\"/>");
            for p in pts.split(' ') {
                let (x, y) = p.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((70.0..=590.0).contains(&x), "x {x}");
                assert!((40.0..=370.0).contains(&y), "y {y}");
            }
        }
    }

    fn level(name: &str, p50: f64, p99: f64, tp: f64, cpu: f64) -> Row {
        let mut r = Row::new(name, name);
        r.reps = vec![Rep {
            p50,
            p90: p50,
            p99,
            max: p99,
            throughput: tp,
            cpu_per_request: Some(cpu),
        }];
        r
    }

    #[test]
    fn ladder_ratios_subtract_the_floor_and_check_the_targets() {
        let rows = vec![
            level("L0", 100.0, 200.0, 50_000.0, 8.0),
            level("L1", 220.0, 400.0, 40_000.0, 20.0),
            level("L2n", 210.0, 380.0, 40_000.0, 18.0),
            // Added p50 150 / 120 = 1.25 (met, at the bound), p99 500/200 = 2.5 (missed),
            // throughput 0.8 (met), CPU 30/20 = 1.5 (missed).
            level("L2", 250.0, 700.0, 32_000.0, 30.0),
            // Service time 1000 µs subtracted: added p50 (1340-100-1000)/120 = 2.0 (met),
            // p99 (1700-200-1000)/200 = 2.5 (met).
            level("L3", 1340.0, 1700.0, 10_000.0, 60.0),
        ];
        let out = ladder_ratios(&rows, 1000.0).unwrap();
        assert!(
            out.contains("| L2 | 1.25× ✅ (≤ 1.25×) | 2.50× ❌ (≤ 1.5×) | 0.80× ✅ (≥ 0.8×) | 1.50× ❌ (≤ 1.25×) |"),
            "{out}"
        );
        assert!(
            out.contains(
                "| L3 | 2.00× ✅ (≤ 2×) | 2.50× ✅ (≤ 3×) | 0.25× ❌ (≥ 0.5×) | 3.00× ❌ (≤ 2×) |"
            ),
            "{out}"
        );
        // L2n has no targets of its own: plain ratios.
        assert!(
            out.contains("| L2n | 0.92× | 0.90× | 1.00× | 0.90× |"),
            "{out}"
        );
        // L2 against nginx: (150/110, 500/180, 0.8).
        assert!(
            out.contains("added p50 1.36× ❌, added p99 2.78× ❌, max throughput 0.80× ❌"),
            "{out}"
        );
        // No floor or baseline, no ratios.
        assert!(ladder_ratios(&rows[2..], 0.0).is_none());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_us(850.0), "850 µs");
        assert_eq!(format_us(1200.0), "1.2 ms");
        assert_eq!(format_us(2_000_000.0), "2 s");
    }
}
