#!/usr/bin/env python3
"""Propagation: write and close a file on device A, then poll the same file
on device B until it shows the new content. Prints one latency in seconds
per run (or "timeout"); stops after the first timeout.

    propagate.py A_FILE B_FILE RUNS TIMEOUT_S
"""
import os
import sys
import time


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def main():
    a, b, runs, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    for i in range(runs + 1):
        # Same length every time, so a device that only trusts the size
        # cannot tell the versions apart without looking at the content.
        content = f"run {i:06d} {os.urandom(8).hex()}\n".encode()
        t0 = time.monotonic()
        with open(a, "wb") as f:
            f.write(content)
        while True:
            if read(b) == content:
                dt = time.monotonic() - t0
                break
            if time.monotonic() - t0 > timeout:
                dt = None
                break
            time.sleep(0.002)
        if i == 0:
            # The warm-up run creates the file; it is not counted.
            if dt is None:
                print("timeout", flush=True)
                return
            continue
        print("timeout" if dt is None else f"{dt:.6f}", flush=True)
        if dt is None:
            return
        time.sleep(0.05)


if __name__ == "__main__":
    main()
