//! How many activation records per second the embedded store sustains.
//!
//! - `sqlite/apply_batch_500`: one transaction of 500 serialised records into SQLite
//!   (WAL, synchronous=NORMAL) — the writer's unit of work.
//! - `recorder/complete_and_flush_5000`: 5,000 records pushed through the recorder's
//!   bounded queue by concurrent tasks and flushed — the path invocations use.
//!
//! Target (docs/benchmarks.md): at least 20,000 records/s on a 2-core machine.
//! Run: `cargo bench --bench activation_store`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use owl::activation::Recorder;
use owl::activation::sqlite::SqliteStore;
use owl::activation::store::Record;
use owl::policy::{ActivationsConfig, StoreKind};
use owl::telemetry::Metrics;
use owl::whisk::activation::{Annotation, LogStream, format_log_line};
use owl::whisk::{Activation, ActivationId, ActivationResponse};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A realistic record: a small result, two log lines, the usual annotations.
fn record(i: u64) -> Activation {
    let now = time::OffsetDateTime::now_utc();
    Activation {
        duration_ms: None,
        namespace: "guest".into(),
        name: format!("action{}", i % 50),
        subject: "guest".into(),
        activation_id: ActivationId::generate(),
        start: 1_700_000_000_000 + i as i64,
        end: 1_700_000_000_010 + i as i64,
        cause: None,
        response: ActivationResponse::success(
            json!({"greeting": "Hello, world!", "n": i}),
            Some(40),
        ),
        logs: vec![
            format_log_line(now, LogStream::Stdout, "starting"),
            format_log_line(now, LogStream::Stdout, "done"),
        ],
        version: "0.0.1".into(),
        publish: false,
        annotations: vec![
            Annotation {
                key: "limits".into(),
                value: json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}),
            },
            Annotation {
                key: "path".into(),
                value: json!(format!("guest/action{}", i % 50)),
            },
            Annotation {
                key: "kind".into(),
                value: json!("nodejs:20"),
            },
            Annotation {
                key: "timeout".into(),
                value: json!(false),
            },
            Annotation {
                key: "waitTime".into(),
                value: json!(3),
            },
        ],
    }
}

fn config(dir: &std::path::Path) -> ActivationsConfig {
    ActivationsConfig {
        store: StoreKind::Embedded,
        data_dir: dir.to_path_buf(),
        retention: Duration::from_secs(86_400),
        max_records: 100_000_000,
        queue: 10_000,
        batch: 500,
        write_retry: Duration::from_secs(30),
        fsync: false,
    }
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(dir.path(), Duration::from_secs(86_400), 100_000_000, true).unwrap();
    let mut g = c.benchmark_group("sqlite");
    g.throughput(Throughput::Elements(500));
    let mut i = 0u64;
    g.bench_function("apply_batch_500", |b| {
        b.iter_batched(
            || {
                let batch: Vec<Record> = (0..500).map(|k| Record::new(record(i + k))).collect();
                i += 500;
                batch
            },
            |batch| store.apply(&[], &batch).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn recorder(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rec: Arc<Recorder> = rt
        .block_on(Recorder::start(
            &config(dir.path()),
            None,
            Arc::new(Metrics::new()),
        ))
        .unwrap();
    let mut g = c.benchmark_group("recorder");
    g.throughput(Throughput::Elements(5_000));
    g.sample_size(20);
    g.bench_function("complete_and_flush_5000", |b| {
        b.to_async(&rt).iter_batched(
            || (0..5_000u64).map(record).collect::<Vec<_>>(),
            |records| {
                let rec = rec.clone();
                async move {
                    let mut tasks = Vec::new();
                    for chunk in records.chunks(500) {
                        let rec = rec.clone();
                        let chunk = chunk.to_vec();
                        tasks.push(tokio::spawn(async move {
                            for r in chunk {
                                rec.complete(r).await;
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                    rec.flush().await;
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, sqlite, recorder);
criterion_main!(benches);
