"""A program that commits to SQLite and says so: the subject of the power-loss experiments.

``python -m tests.simulators.power.sqlite_writer DB --synchronous FULL --journal WAL``

Prints ``ready`` once its table exists, then commits batches of rows forever, printing each
batch's id once ``COMMIT`` has returned: an acknowledged commit, which a durable store must
keep through any power cut that comes after the line was written.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--synchronous", default="FULL", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument("--journal", default="WAL", choices=["WAL", "DELETE"])
    parser.add_argument("--rows", type=int, default=50, help="rows per commit")
    args = parser.parse_args()

    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={args.journal}")
    conn.execute(f"PRAGMA synchronous={args.synchronous}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS reading (batch INTEGER, k INTEGER, value REAL, note TEXT)"
    )
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    batch = 0
    while True:
        batch += 1
        rows = [(batch, k, batch * 0.5 + k, "x" * 40) for k in range(args.rows)]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO reading VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        out.write(f"{batch}\n")
        out.flush()


if __name__ == "__main__":
    main()
