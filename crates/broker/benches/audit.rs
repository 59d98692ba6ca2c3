//! The audit file sink alone: N records of a realistic size (16 KB of JSON, about what a
//! completed SPID login with its raw Response weighs) appended at once by N tasks, each
//! waiting for its fsync. With group commit the cost per record falls as N grows: one
//! `fdatasync` serves the whole batch.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use broker::features::audit::file::{FileSink, Options};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn append(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("varco-bench-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_741_944_420);
    let sink = FileSink::open(
        &Options {
            dir: dir.clone(),
            max_file_bytes: 256 * 1024 * 1024,
            retention: Duration::from_secs(731 * 86_400),
            key: None,
            // The sink's own cost per batch: back-to-back iterations would otherwise measure
            // the interval. The ACS bench (`acs_throughput`) runs with the default.
            commit_interval: Duration::ZERO,
        },
        now,
    )
    .unwrap();
    let payload = format!(
        "{{\"kind\":\"login\",\"response_b64\":\"{}\"}}",
        "A".repeat(16 * 1024)
    )
    .into_bytes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("audit_append_16k");
    for n in [1usize, 16, 64] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("concurrent_{n}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let tasks: Vec<_> = (0..n)
                        .map(|_| {
                            let (sink, payload) = (sink.clone(), payload.clone());
                            tokio::spawn(async move { sink.append(now, payload).await.unwrap() })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            })
        });
    }
    group.finish();
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(audit, append);
criterion_main!(audit);
