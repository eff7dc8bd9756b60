#!/usr/bin/env python3
"""Commit latency of owl's journal configuration, with and without WAL checkpoints.

Reproduces what the embedded store's writer does under load (src/activation/sqlite.rs):
the same schema and pragmas (WAL, synchronous=NORMAL, 64 MB cache), and one transaction
per group of records (4 records of ~1 KB each, plus the `pending` delete), 20,000 groups
back to back. Prints the commit latency distribution and the WAL's final size.

    python3 docs/experiments/wal_checkpoint.py 10000        # owl's setting
    python3 docs/experiments/wal_checkpoint.py 1000         # smaller, more frequent
    python3 docs/experiments/wal_checkpoint.py 0 --background 0.05
        # no checkpoint on the writer; a second connection runs PASSIVE checkpoints
        # every 50 ms (shows checkpoint starvation: the WAL grows without bound)

Used in docs/benchmarks.md ("Where L3's p99 comes from"). Python's sqlite3 module runs
the same SQLite library code as rusqlite's bundled build (versions may differ), and the
stalls measured here are the library's and the disk's, not Python's.
"""

import argparse
import os
import sqlite3
import tempfile
import threading
import time
import uuid

SCHEMA = """
CREATE TABLE activations (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,
  namespace TEXT NOT NULL, name_key TEXT NOT NULL, start INTEGER NOT NULL,
  doc TEXT NOT NULL, listed INTEGER NOT NULL DEFAULT 1);
CREATE INDEX activations_by_namespace ON activations(namespace, start);
CREATE INDEX activations_by_name ON activations(namespace, name_key, start);
CREATE INDEX activations_by_start ON activations(start);
CREATE TABLE pending (id TEXT PRIMARY KEY, doc TEXT NOT NULL, created INTEGER NOT NULL,
  done INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("autocheckpoint", type=int, help="PRAGMA wal_autocheckpoint (pages)")
    ap.add_argument("--background", type=float, default=None,
                    help="run PASSIVE checkpoints on a second connection every N seconds")
    ap.add_argument("--groups", type=int, default=20_000)
    ap.add_argument("--dir", default=None, help="directory for the database (default: a temp dir)")
    args = ap.parse_args()

    d = args.dir or tempfile.mkdtemp(prefix="owl-wal-")
    path = os.path.join(d, "owl.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute(f"PRAGMA wal_autocheckpoint={args.autocheckpoint}")
    conn.executescript(SCHEMA)

    stop = threading.Event()
    if args.background is not None:
        def checkpointer() -> None:
            c = sqlite3.connect(path, isolation_level=None)
            while not stop.is_set():
                time.sleep(args.background)
                c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        threading.Thread(target=checkpointer, daemon=True).start()

    doc = "x" * 900
    latencies = []
    started = time.time()
    for _ in range(args.groups):
        t = time.perf_counter()
        conn.execute("BEGIN")
        for _ in range(4):
            now = int(time.time() * 1000)
            conn.execute(
                "INSERT OR REPLACE INTO activations (id, namespace, name_key, start, doc, listed)"
                " VALUES (?, ?, ?, ?, ?, 1)",
                (uuid.uuid4().bytes, "guest", "guest/hello", now, doc),
            )
            conn.execute("DELETE FROM pending WHERE id = ?", (uuid.uuid4().hex,))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t)
    stop.set()
    latencies.sort()
    n = len(latencies)
    ms = lambda q: latencies[min(n - 1, int(n * q))] * 1e3  # noqa: E731
    wal = os.path.getsize(path + "-wal") / 1e6 if os.path.exists(path + "-wal") else 0.0
    print(
        f"autocheckpoint={args.autocheckpoint} background={args.background} groups={n} "
        f"wall={time.time() - started:.1f}s p50={ms(0.5):.2f}ms p99={ms(0.99):.2f}ms "
        f"p99.9={ms(0.999):.2f}ms max={latencies[-1] * 1e3:.1f}ms wal={wal:.1f}MB"
    )


if __name__ == "__main__":
    main()
