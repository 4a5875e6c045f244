#!/usr/bin/env python3
"""Small helpers for scripts/bench.

    files.py write DIR N SIZE     create N files of SIZE distinct random bytes
    files.py touch DIR N          create N empty files (f000000…)
    files.py feed DEVICE N START  print a JSON feed of N empty-file items
                                  f{START}… (a Live Folder's root) for
                                  POST /v1/objects/{id}/feed
    files.py port                 print a free TCP port on 127.0.0.1
    files.py sqlite DB MODE       10,000 rows in 100 transactions into a new
                                  SQLite database DB in journal mode MODE;
                                  print the seconds it took
    files.py rewrite FILE N SIZE  write FILE N times over, SIZE new random
                                  bytes each time, closing it each time;
                                  print the seconds it took
    files.py inline-bytes DB [REF END SKIP]
                                  print the bytes of the chunks meshd's
                                  database DB keeps inline (recorded after
                                  the file REF's mtime and not after END's;
                                  none whose hash is a line of SKIP)
"""
import json
import os
import socket
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timezone

EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def main():
    cmd = sys.argv[1]
    if cmd == "write":
        d, n, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        pool = os.urandom(size * n)
        for i in range(n):
            with open(os.path.join(d, f"s{i:06d}"), "wb") as f:
                f.write(pool[i * size:(i + 1) * size])
    elif cmd == "touch":
        d, n = sys.argv[2], int(sys.argv[3])
        for i in range(n):
            with open(os.path.join(d, f"f{i:06d}"), "wb"):
                pass
    elif cmd == "feed":
        device, n, start = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        now = datetime.now(timezone.utc)
        when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        mtime = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        items = []
        for i in range(start, start + n):
            name = f"f{i:06d}"
            items.append({
                "sync": {"id": f"urn:uuid:{uuid.uuid4()}", "updates": 1, "deleted": False,
                         "noconflicts": False,
                         "history": [{"sequence": 1, "when": when, "by": device}]},
                "title": {"type": "text", "value": name},
                "data": {"mode": 420, "mtime": mtime, "name": name, "type": "file"},
                "enclosure": {"hash": EMPTY_BLAKE3, "length": 0, "chunks": []},
            })
        json.dump({"items": items}, sys.stdout)
    elif cmd == "sqlite":
        path, mode = sys.argv[2], sys.argv[3]
        start = time.monotonic()
        db = sqlite3.connect(path, isolation_level=None)
        got = db.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0]
        if got.lower() != mode.lower():
            sys.exit(f"journal mode {mode} refused ({got})")
        db.execute("CREATE TABLE t (i INTEGER, s TEXT)")
        for tx in range(100):
            db.execute("BEGIN")
            for i in range(100):
                db.execute("INSERT INTO t VALUES (?, ?)", (tx * 100 + i, f"row {i} of transaction {tx}"))
            db.execute("COMMIT")
        db.close()
        print(f"{time.monotonic() - start:.6f}")
    elif cmd == "rewrite":
        path, n, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        start = time.monotonic()
        for _ in range(n):
            data = os.urandom(size)
            with open(path, "wb") as f:
                f.write(data)
        print(f"{time.monotonic() - start:.6f}")
    elif cmd == "inline-bytes":
        db = sqlite3.connect(f"file:{sys.argv[2]}?mode=ro", uri=True)
        query = "SELECT c.hash, c.size, c.stored FROM chunk_data d JOIN chunks c USING (hash)"
        kept = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_data'").fetchone()
        rows = db.execute(query).fetchall() if kept else []  # (a meshd from before them)
        if len(sys.argv) > 3:
            ref, end = (os.stat(f).st_mtime_ns // 1_000_000 for f in sys.argv[3:5])
            with open(sys.argv[5]) as f:
                skip = {line.strip() for line in f}
            rows = [r for r in rows if ref < r[2] <= end and r[0] not in skip]
        print(sum(r[1] for r in rows))
    elif cmd == "port":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
