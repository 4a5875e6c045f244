#!/usr/bin/env python3
"""Fan-out: many devices subscribed to one object's changes (issue #6).

Starts its own meshd on a fresh data directory, creates an owner and
USERS member accounts with DEVICES-PER-USER devices each (every member joins
one shared list by invitation, as people would), then measures twice on the
same server and the same object:

  1. baseline: one subscriber (`GET /v1/events?subscribe=feed:OBJECT`, SSE);
  2. N subscribers, all connected at once.

In each phase the owner makes one warm-up change and then K changes (one
FeedSync item each, `POST /v1/objects/{id}/feed`), INTERVAL seconds apart
(or as soon as every subscriber has the previous one, if that takes longer).
For every change it records when the POST was sent, when it returned and
when each subscriber got the event; and the server's CPU time (utime + stime
from /proc/PID/stat) and memory (VmRSS, VmHWM from /proc/PID/status). The
server is restarted on its data after the setup, so that memory is not what
1,000 password checks left behind. The subscribers are spread over CLIENTS
processes (this script again, with --worker), each with its own asyncio
loop, so the client drains the sockets on every core.

Every subscriber must get every change exactly once and in order, and
nothing else; anything else fails the run (exit status 1, after printing
what was measured, with the failure in the notes).

    fanout.py --meshd PATH [--subscribers N] [--changes K] [--interval S]
              [--devices-per-user D] [--clients CLIENTS] [--timeout S]
              [--settle-limit S] [--tsv FILE] [--json FILE] [--tmp DIR]
              [--label NAME] [--absent SYSTEM]... [--perf FILE] [--keep]

Prints a summary on stderr; --tsv writes rows in scripts/bench's results
format (workload, system, unit, baseline system, values, note); --json the
raw numbers. Python 3 standard library only.
"""
import argparse
import asyncio
import atexit
import concurrent.futures
import ctypes
import http.client
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone

PASSWORD = "fanout-bench-password"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"fanout: [{datetime.now(timezone.utc):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


# ----------------------------------------------------------- the server ---

class Server:
    """One meshd, its data directory and its /proc figures."""

    def __init__(self, meshd, tmp_parent, extra_args):
        self.meshd = meshd
        self.dir = tempfile.mkdtemp(prefix="mesh-fanout.", dir=tmp_parent)
        self.data = os.path.join(self.dir, "data")
        self.proc = None
        self.extra_args = extra_args
        self.log_path = os.path.join(self.dir, "meshd.log")

    def add_user(self, email):
        subprocess.run([self.meshd, "user", "add", email, "--password-stdin", "--data", self.data],
                       input=PASSWORD + "\n", text=True, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.meshd, "serve", "--data", self.data, "--listen", "127.0.0.1:0", *self.extra_args],
            stdout=subprocess.PIPE, stderr=self.logf, preexec_fn=die_with_parent)
        line = self.proc.stdout.readline().decode().strip()
        if "listening on http://" not in line:
            raise Failed(f"meshd did not start: {line!r} (see {self.log_path})")
        hostport = line.split("http://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.pid = self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def remove(self, keep=False):
        if keep:
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu(self):
        """CPU seconds (user + system, all threads, living and exited)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status(self):
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) / 1024
                elif k == "Threads":
                    out[k] = int(v)
        out["fds"] = len(os.listdir(f"/proc/{self.pid}/fd"))
        return out


# ------------------------------------------------- plain HTTP for setup ---

class Api:
    def __init__(self, host, port):
        self.host, self.port = host, port

    def call(self, method, path, body=None, token=None, expect=(200, 201)):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read()
        finally:
            conn.close()
        if r.status not in expect:
            raise Failed(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None

    def enrol(self, email, device):
        r = self.call("POST", "/v1/tokens", {"email": email, "password": PASSWORD, "device_name": device})
        return r["token"], r["device_id"]


def item(device, title):
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "sync": {"id": f"urn:uuid:{uuid.uuid4()}", "updates": 1, "deleted": False,
                 "noconflicts": False, "history": [{"sequence": 1, "when": when, "by": device}]},
        "title": {"type": "text", "value": title},
    }


# ------------------------------------------------------ SSE subscribers ---

class Subscriber(asyncio.Protocol):
    """One `GET /v1/events?subscribe=feed:OBJECT` over HTTP/1.1 (chunked
    SSE). Timestamps every read as it arrives, then hands the events to its
    group."""

    def __init__(self, group, index, token):
        self.group, self.index, self.token = group, index, token
        self.raw = bytearray()
        self.sse = bytearray()
        self.headers_done = False
        self.chunked = False
        self.connected = asyncio.get_running_loop().create_future()
        self.blocks = []  # (t, SSE message) as they came
        self.seen = set()  # entries seen
        self.events = []  # (seq from `id:`, entry, t), after parse()
        self.other = []   # anything else the stream carried (must stay empty)
        self.transport = None
        self.lost = None
        self.busy = 0.0   # seconds spent in data_received

    def connection_made(self, transport):
        self.transport = transport
        transport.write(
            (f"GET /v1/events?subscribe=feed:{self.group.object} HTTP/1.1\r\n"
             f"Host: {self.group.host}:{self.group.port}\r\n"
             f"Authorization: Bearer {self.token}\r\n"
             "Accept: text/event-stream\r\n\r\n").encode())

    def connection_lost(self, exc):
        self.lost = exc or "closed by the server"
        if not self.connected.done():
            self.connected.set_exception(Failed(f"subscriber {self.index}: connection lost: {self.lost}"))
        self.group.subscriber_lost(self)

    def data_received(self, data):
        # The hot path, run for every subscriber on every change: note the
        # time, unwrap the chunk, find the entry id, and keep the rest for
        # later (full parsing and the checks happen after the run).
        t = time.perf_counter()
        if self.raw:
            self.raw += data
            data = bytes(self.raw)
            self.raw.clear()
        if not self.headers_done:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.raw += data
                return
            head = data[:end].decode("latin-1").split("\r\n")
            data = data[end + 4:]
            status = head[0].split(" ", 2)
            if len(status) < 2 or status[1] != "200":
                self.connected.set_exception(Failed(f"subscriber {self.index}: {head[0]}"))
                self.transport.close()
                return
            hdrs = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
            self.chunked = hdrs.get("transfer-encoding", "").lower() == "chunked"
            self.headers_done = True
            self.connected.set_result(t)
        if self.chunked:
            pos = 0
            while True:
                nl = data.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = int(data[pos:nl].split(b";")[0], 16)
                if len(data) < nl + 2 + size + 2:
                    break
                self.sse += data[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
            if pos < len(data):
                self.raw += data[pos:]
        else:
            self.sse += data
        while True:
            end = self.sse.find(b"\n\n")
            if end < 0:
                break
            block = bytes(self.sse[:end])
            del self.sse[:end + 2]
            if block.startswith(b":") and b"\n" not in block:
                continue  # a comment: the server's heartbeat
            self.blocks.append((t, block))
            i = block.find(b'"entry":"')
            if i >= 0:
                self.group.received(self, block[i + 9:block.index(b'"', i + 9)].decode(), t)
        self.busy += time.perf_counter() - t

    def parse(self):
        """Turns the blocks kept during the run into events
        (seq from `id:`, entry, t) and anything else."""
        for t, block in self.blocks:
            fields = {}
            for line in block.decode().split("\n"):
                if not line or line.startswith(":"):
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                fields[k] = fields[k] + "\n" + v if k in fields else v
            if "data" not in fields:
                continue
            msg = json.loads(fields["data"])
            if fields.get("event") or msg.get("type") != "entry_changed" or msg.get("object") != self.group.object:
                self.other.append(msg)
            elif fields.get("id") != str(msg.get("seq")):
                self.other.append({"id_mismatch": fields.get("id"), **msg})
            else:
                self.events.append((msg["seq"], msg["entry"], t))
        self.blocks = []


class Group:
    """The subscribers of one client process (`fanout.py --worker`). It
    reports on stdout, one JSON object a line: `connected`, `all` (every
    subscriber here has an entry, and when the last got it), `problem` (a
    stream failed or closed), and at the end `result`; it takes `mark` and
    `finish` on stdin."""

    def __init__(self, host, port, object_id):
        self.host, self.port, self.object = host, port, object_id
        self.subs = []
        self.counts = {}
        self.closing = False

    def say(self, **msg):
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

    def received(self, sub, entry, t):
        if entry in sub.seen:
            return  # a duplicate: the checks after the run report it
        sub.seen.add(entry)
        n = self.counts.get(entry, 0) + 1
        self.counts[entry] = n
        if n == len(self.subs):
            self.say(all=entry, t=t)

    def subscriber_lost(self, sub):
        if not self.closing:
            self.say(problem=f"subscriber {sub.index} lost its stream: {sub.lost}")

    async def connect(self, subs, parallel=64):
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(parallel)

        async def one(i, token):
            async with gate:
                sub = Subscriber(self, i, token)
                await loop.create_connection(lambda: sub, self.host, self.port)
                self.subs.append(sub)
                await sub.connected

        await asyncio.gather(*(one(i, t) for i, t in subs))


async def worker_main():
    loop = asyncio.get_running_loop()
    lines = asyncio.Queue()
    pending = bytearray()

    def readable():
        data = os.read(0, 65536)
        if not data:
            lines.put_nowait(None)
            loop.remove_reader(0)
            return
        pending.extend(data)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            lines.put_nowait(json.loads(line))

    loop.add_reader(0, readable)
    conf = await lines.get()
    group = Group(conf["host"], conf["port"], conf["object"])
    try:
        await group.connect(conf["subs"])
    except Failed as e:
        group.say(problem=str(e))
        return
    group.say(connected=time.perf_counter())
    cpu0 = time.process_time()
    while True:
        cmd = await lines.get()
        if cmd is None:
            return
        if cmd == "mark":
            cpu0 = time.process_time()
            for s in group.subs:
                s.busy = 0.0
        elif cmd == "finish":
            group.closing = True
            cpu = time.process_time() - cpu0
            for s in group.subs:
                s.parse()
            group.say(result=[[s.index, s.events, s.other[:3], len(s.other)] for s in group.subs],
                      busy=sum(s.busy for s in group.subs), cpu=cpu)
            for s in group.subs:
                s.transport.close()
            return


class Run:
    """One phase: subscribers spread over client processes, and the changes
    made while they listen."""

    def __init__(self, server, object_id, owner_token, owner_device):
        self.server = server
        self.object = object_id
        self.owner_token, self.owner_device = owner_token, owner_device
        self.n = 0
        self.workers = []
        self.waiting = {}  # entry -> [client processes still to report, future, latest t]
        self.problems = []
        self.results = {}  # worker -> its `result` message
        self.closing = False

    def fail_waits(self, why):
        for w in self.waiting.values():
            if not w[1].done():
                w[1].set_exception(Failed(why))

    async def listen(self, i, proc, connected):
        """Reads one client process's reports until it ends."""
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "all" in msg:
                w = self.waiting.get(msg["all"])
                if w is not None:
                    w[0] -= 1
                    w[2] = max(w[2], msg["t"])
                    if w[0] == 0 and not w[1].done():
                        w[1].set_result(w[2])
            elif "connected" in msg:
                connected.set_result(msg["connected"])
            elif "problem" in msg:
                self.problems.append(msg["problem"])
                if not connected.done():
                    connected.set_exception(Failed(msg["problem"]))
                self.fail_waits(msg["problem"])
            elif "result" in msg:
                self.results[i] = msg
        if not self.closing:
            why = f"client process {i} ended unexpectedly (status {await proc.wait()})"
            self.problems.append(why)
            if not connected.done():
                connected.set_exception(Failed(why))
            self.fail_waits(why)

    async def connect(self, tokens, processes):
        """Opens one subscription per token, spread over `processes` client
        processes (each its own event loop), and waits until every stream
        has answered."""
        self.n = len(tokens)
        processes = max(1, min(processes, len(tokens)))
        shares = [[[i, t] for i, t in enumerate(tokens) if i % processes == p] for p in range(processes)]
        waits = []
        for p, share in enumerate(shares):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, os.path.abspath(__file__), "--worker",
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 28, preexec_fn=die_with_parent)
            connected = asyncio.get_running_loop().create_future()
            self.workers.append((proc, asyncio.ensure_future(self.listen(p, proc, connected))))
            proc.stdin.write((json.dumps({"host": self.server.host, "port": self.server.port,
                                          "object": self.object, "subs": share}) + "\n").encode())
            waits.append(connected)
        await asyncio.gather(*waits)

    def tell(self, cmd):
        for proc, _ in self.workers:
            proc.stdin.write((json.dumps(cmd) + "\n").encode())

    async def post_open(self):
        self.reader, self.writer = await asyncio.open_connection(self.server.host, self.server.port)

    async def post(self, title):
        it = item(self.owner_device, title)
        body = json.dumps({"items": [it]}).encode()
        req = (f"POST /v1/objects/{self.object}/feed HTTP/1.1\r\n"
               f"Host: {self.server.host}:{self.server.port}\r\n"
               f"Authorization: Bearer {self.owner_token}\r\n"
               "Content-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        entry = it["sync"]["id"]
        done = asyncio.get_running_loop().create_future()
        self.waiting[entry] = [len(self.workers), done, 0.0]
        t_send = time.perf_counter()
        self.writer.write(req)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for h in lines[1:]:
            k, _, v = h.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        resp = await self.reader.readexactly(length)
        t_ret = time.perf_counter()
        if " 200 " not in lines[0] and " 201 " not in lines[0]:
            raise Failed(f"POST feed: {lines[0]} {resp[:300]!r}")
        return entry, t_send, t_ret, done

    async def changes(self, k, interval, timeout, warmup=True):
        """Makes (1 warm-up +) k changes; returns every entry made, in
        order, and one record per counted change."""
        out, entries = [], []
        for i in range(k + (1 if warmup else 0)):
            counted = not (warmup and i == 0)
            cpu0 = self.server.cpu()
            entry, t_send, t_ret, done = await self.post(f"change {i}")
            entries.append(entry)
            try:
                t_all = await asyncio.wait_for(done, timeout)
            except asyncio.TimeoutError:
                subs = await self.finish()
                missing = [ix for ix, events, _, _ in subs if entry not in {e for _, e, _ in events}]
                raise Failed(f"change {i}: {len(missing)} of {self.n} subscribers did not get it "
                             f"within {timeout} s (e.g. {missing[:10]})")
            # Let the rest of the interval pass; the CPU of the change is
            # everything the server used from the POST to the next change.
            rest = interval - (time.perf_counter() - t_send)
            if rest > 0:
                await asyncio.sleep(rest)
            if counted:
                out.append({"entry": entry, "t_send": t_send, "t_ret": t_ret, "t_all": t_all,
                            "cpu": self.server.cpu() - cpu0})
        return entries, out

    async def finish(self):
        """Ends the client processes; returns every subscriber's
        [index, events, first unexpected messages, how many]."""
        self.closing = True
        self.tell("finish")
        for proc, listener in self.workers:
            await listener
            await proc.wait()
        return sorted((s for r in self.results.values() for s in r["result"]), key=lambda s: s[0])

    async def close(self):
        self.closing = True
        for proc, listener in self.workers:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            listener.cancel()
        if getattr(self, "writer", None):
            self.writer.close()

    def verify(self, subs, entries):
        """Every subscriber got exactly `entries`, in order, with rising
        sequence numbers, and nothing else."""
        bad = list(self.problems)
        if len(subs) != self.n:
            bad.append(f"{len(subs)} subscribers reported, {self.n} connected")
        for index, events, other, n_other in subs:
            got = [e for _, e, _ in events]
            seqs = [q for q, _, _ in events]
            if got != entries:
                dup = len(got) - len(set(got))
                missing = len(set(entries) - set(got))
                order = "" if sorted(got, key=entries.index) == got or missing else ", out of order"
                bad.append(f"subscriber {index}: {len(got)} events for {len(entries)} changes "
                           f"({missing} missing, {dup} duplicated{order})")
            elif seqs != sorted(set(seqs)):
                bad.append(f"subscriber {index}: sequence numbers not rising: {seqs}")
            if n_other:
                bad.append(f"subscriber {index}: {n_other} unexpected messages, first {other[0]}")
        return bad


def die_with_parent():
    # Die with this script even if it is killed without a chance to clean
    # up (PR_SET_PDEATHSIG = 1).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except Exception:
        pass


async def settle(server, quiet=0.02, window=1.0, limit=60.0):
    """Waits until the server uses less than `quiet` CPU seconds in a
    `window`; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        c = server.cpu()
        await asyncio.sleep(window)
        if server.cpu() - c < quiet:
            break
    return time.perf_counter() - t0


def start_perf(server, out):
    return subprocess.Popen(["perf", "record", "-F", "199", "--call-graph", "dwarf,16384",
                             "-p", str(server.pid), "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_perf(proc):
    proc.send_signal(signal.SIGINT)
    proc.wait()


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    r = max(1, math.ceil(p / 100 * len(v)))
    return v[r - 1]


async def phase(server, object_id, owner, tokens, args, perf=None):
    """Connects len(tokens) subscribers, makes the changes, measures."""
    run = Run(server, object_id, *owner)
    m = {"subscribers": len(tokens)}
    try:
        await run.post_open()
        perf_proc = None
        if perf and len(tokens) > 1:
            perf_proc = start_perf(server, perf + ".connect")
        cpu0, t0 = server.cpu(), time.perf_counter()
        await run.connect(tokens, args.clients)
        m["connect_s"] = time.perf_counter() - t0
        m["client_processes"] = len(run.workers)
        if perf_proc:
            await asyncio.sleep(10)
            stop_perf(perf_proc)
        # Each connection records its device online, which wakes the open
        # streams: wait until the server is quiet again before measuring
        # anything else.
        m["settle_s"] = await settle(server, limit=args.settle_limit)
        m["quiet_after_s"] = time.perf_counter() - t0
        m["connect_cpu_s"] = server.cpu() - cpu0
        if m["settle_s"] >= args.settle_limit:
            run.problems.append(f"the server was still busy {args.settle_limit:.0f} s after the "
                                f"{len(tokens)} subscribers connected")
        st = server.status()
        m["rss_connected_mib"], m["threads_connected"], m["fds_connected"] = st["VmRSS"], st["Threads"], st["fds"]
        c = server.cpu()
        await asyncio.sleep(2.0)
        m["idle_cpu_per_s"] = (server.cpu() - c) / 2.0
        log(f"{len(tokens)} subscriber(s) connected in {m['connect_s']:.2f} s "
            f"(server CPU {m['connect_cpu_s']:.2f} s until quiet, {m['quiet_after_s']:.1f} s after the first connected); "
            f"RSS {st['VmRSS']:.1f} MiB, {st['Threads']} threads, {st['fds']} fds")
        run.tell("mark")
        perf_proc = None
        if perf and len(tokens) > 1:
            perf_proc = start_perf(server, perf + ".changes")
            await asyncio.sleep(1.0)
        cpu_b, t_b, own0 = server.cpu(), time.perf_counter(), time.process_time()
        entries, changes = await run.changes(args.changes, args.interval, args.timeout)
        m["burst_cpu_s"] = server.cpu() - cpu_b
        m["burst_s"] = time.perf_counter() - t_b
        own = time.process_time() - own0
        if perf_proc:
            stop_perf(perf_proc)
        st = server.status()
        m["rss_after_mib"], m["hwm_mib"], m["threads_after"] = st["VmRSS"], st["VmHWM"], st["Threads"]
        # tokio's blocking threads exit after 10 s without work; the
        # subscribers stay connected.
        await asyncio.sleep(12)
        st = server.status()
        m["rss_later_mib"], m["threads_later"] = st["VmRSS"], st["Threads"]
        subs = await run.finish()
        m["client_busy_s"] = sum(r["busy"] for r in run.results.values())
        m["client_cpu_s"] = own + sum(r["cpu"] for r in run.results.values())
        # Every subscriber must have the warm-up change and the counted
        # ones, in the order they were made, and nothing else.
        problems = run.verify(subs, entries)
        got = [{e: t for _, e, t in events} for _, events, _, _ in subs]
        per_change = []
        for c in changes:
            lat_ret, lat_send = [], []
            for g in got:
                t = g.get(c["entry"])
                if t is None:
                    continue
                lat_ret.append(t - c["t_ret"])
                lat_send.append(t - c["t_send"])
            per_change.append({
                "post_s": c["t_ret"] - c["t_send"],
                "all_from_return_s": max(lat_ret),
                "all_from_send_s": max(lat_send),
                "first_from_send_s": min(lat_send),
                "sub_p50_from_return_s": pct(lat_ret, 50),
                "sub_p99_from_return_s": pct(lat_ret, 99),
                "sub_p50_from_send_s": pct(lat_send, 50),
                "sub_p99_from_send_s": pct(lat_send, 99),
                "cpu_s": c["cpu"],
                "lat_ret": lat_ret,
                "lat_send": lat_send,
            })
        m["changes"] = per_change
        m["problems"] = problems
        return m
    finally:
        await run.close()
        await asyncio.sleep(0.2)


def summarise(m):
    pc = m["changes"]
    s = {}
    for k in ("all_from_return_s", "all_from_send_s", "post_s", "cpu_s"):
        v = [c[k] for c in pc]
        s[k] = {"p50": pct(v, 50), "p99": pct(v, 99), "max": max(v), "min": min(v)}
    lr = [x for c in pc for x in c["lat_ret"]]
    ls = [x for c in pc for x in c["lat_send"]]
    s["sub_from_return"] = {"p50": pct(lr, 50), "p99": pct(lr, 99), "max": max(lr), "min": min(lr)}
    s["sub_from_send"] = {"p50": pct(ls, 50), "p99": pct(ls, 99), "max": max(ls), "min": min(ls)}
    s["cpu_per_change_s"] = m["burst_cpu_s"] / len(pc)
    return s


def main():
    if sys.argv[1:] == ["--worker"]:
        # A client process of a run: its subscribers, until told to finish.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        asyncio.run(worker_main())
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--devices-per-user", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=60.0, help="per change, until every subscriber has it")
    ap.add_argument("--enrol-parallel", type=int, default=4)
    ap.add_argument("--clients", type=int, default=os.cpu_count() or 1,
                    help="client processes the subscribers are spread over [default: one per CPU]")
    ap.add_argument("--tsv")
    ap.add_argument("--json")
    ap.add_argument("--tmp", help="where to make the scratch directory [default: $TMPDIR]")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--settle-limit", type=float, default=600.0,
                    help="longest wait for the server to go quiet after the subscribers connect")
    ap.add_argument("--perf", help="perf record the server while the N subscribers connect (FILE.connect, "
                    "10 s) and during their changes (FILE.changes)")
    ap.add_argument("--label", default="meshd", help="the system's name in the table")
    ap.add_argument("--absent", action="append", default=[], metavar="SYSTEM",
                    help="a system with nothing equivalent: one row that says so (repeatable)")
    args = ap.parse_args()
    n = args.subscribers

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n * 2 + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n + 256:
        sys.exit(f"fanout: RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)} is too low for {n} subscribers")

    # The SSE subscribers do not send heartbeats (POST /v1/presence), so a
    # long lease keeps every device online for the whole run instead of a
    # wave of lease expiries landing in the middle of the measurement.
    # Every subscriber signs in and connects from 127.0.0.1: the limits
    # meant for strangers (64 connections and 30 sign-ins a minute per
    # address, 512 connections) would measure the throttle, not the fan-out.
    many = str(max(4096, 2 * args.subscribers + 64))
    server = Server(args.meshd, args.tmp, [
        "--presence-lease", "3600",
        "--max-connections", many, "--max-connections-per-address", many,
        "--public-requests-per-minute", "1000000",
    ])
    done = {"v": False}

    def cleanup():
        if done["v"]:
            return
        done["v"] = True
        server.stop()
        server.remove(args.keep)

    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    failure = None
    result = {"subscribers": n, "changes": args.changes, "interval_s": args.interval}
    try:
        users = math.ceil(n / args.devices_per_user)
        owner = "owner@fanout.bench"
        emails = [f"member{u:03d}@fanout.bench" for u in range(users)]
        t0 = time.perf_counter()
        for e in [owner] + emails:
            server.add_user(e)
        server.start()
        api = Api(server.host, server.port)
        owner_token, owner_device = api.enrol(owner, "owner-device")
        obj = api.call("POST", "/v1/objects", {"name": "fanout", "kind": "list"}, owner_token)["id"]

        def member_devices(u):
            email = emails[u]
            count = min(args.devices_per_user, n - u * args.devices_per_user)
            first, _ = api.enrol(email, f"{email}-0")
            inv = api.call("POST", f"/v1/objects/{obj}/members", {"email": email, "role": "reader"}, owner_token)
            if inv.get("result") != "invited":
                raise Failed(f"sharing with {email}: {inv}")
            pending = api.call("GET", "/v1/invitations", token=first)
            ids = [p["id"] for p in pending if p["object"] == obj]
            if len(ids) != 1:
                raise Failed(f"{email}: {len(ids)} pending invitations to the object")
            api.call("POST", f"/v1/invitations/{ids[0]}/accept", token=first)
            return [first] + [api.enrol(email, f"{email}-{d}")[0] for d in range(1, count)]

        with concurrent.futures.ThreadPoolExecutor(args.enrol_parallel) as pool:
            tokens = [t for ts in pool.map(member_devices, range(users)) for t in ts]
        assert len(tokens) == n
        members = api.call("GET", f"/v1/objects/{obj}/members", token=owner_token)
        if len(members) != users + 1:
            raise Failed(f"the object has {len(members)} members, expected {users + 1}")
        result["setup_s"] = time.perf_counter() - t0
        log(f"{users} members with {n} devices enrolled and sharing one list in {result['setup_s']:.0f} s")
        # A fresh process on the same data, so that memory is not what the
        # setup's password checks (argon2) left in the allocator.
        server.stop()
        server.start()
        api = Api(server.host, server.port)

        async def measure():
            await settle(server)
            st = server.status()
            result["rss_idle_mib"], result["threads_idle"] = st["VmRSS"], st["Threads"]
            log(f"idle: RSS {st['VmRSS']:.1f} MiB, {st['Threads']} threads")
            base = await phase(server, obj, (owner_token, owner_device), tokens[:1], args)
            log("baseline (1 subscriber): has it {:.2f} ms after the POST was sent (median)".format(
                summarise(base)["all_from_send_s"]["p50"] * 1000))
            await settle(server)
            many = await phase(server, obj, (owner_token, owner_device), tokens, args, args.perf)
            return base, many

        base, many = asyncio.run(measure())
        result["baseline"], result["fanout"] = base, many
        result["baseline_summary"], result["fanout_summary"] = summarise(base), summarise(many)
        result["rss_hwm_mib"] = many["hwm_mib"]
        problems = base["problems"] + many["problems"]
        if problems:
            failure = f"{len(problems)} problems: " + "; ".join(problems[:10])
    except Failed as e:
        failure = str(e)
    finally:
        cleanup()
    result["failure"] = failure

    if "fanout_summary" in result:
        report(result, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if failure:
        log(f"FAILED: {failure}")
        if args.tsv and "fanout_summary" not in result:
            with open(args.tsv, "a") as f:
                f.write(f"fan-out: all {n} subscribers have a change\t{args.label}, {n} subscribers\ts\t\t\t"
                        f"FAILED: {failure[:300]}\n")
        sys.exit(1)


def report(r, args):
    n, k = r["subscribers"], r["changes"]
    b, m = r["baseline"], r["fanout"]
    bs, ms = r["baseline_summary"], r["fanout_summary"]
    sys1, sysn = f"{args.label}, 1 subscriber", f"{args.label}, {n} subscribers"
    fail = f"FAILED: {r['failure'][:300]}. " if r["failure"] else ""
    ms_ = lambda v: f"{v * 1000:.1f} ms"
    rows = []

    def row(wl, system, unit, base, values, note=""):
        rows.append((wl, system, unit, base, ",".join(f"{v:.6f}" for v in values), note))

    p = lambda s_: (f"p50 {ms_(s_['p50'])}, p99 {ms_(s_['p99'])}, max {ms_(s_['max'])}")
    wl = f"fan-out: all subscribers have a change, from sending the POST ({k} changes)"
    row(wl, sys1, "s", "", [c["all_from_send_s"] for c in b["changes"]], f"baseline for {n} subscribers")
    row(wl, sysn, "s", sys1, [c["all_from_send_s"] for c in m["changes"]],
        f"{fail}the last of the {n} to get each change: {p(ms['all_from_send_s'])}")
    wl = f"fan-out: all subscribers have a change, from the POST's answer ({k} changes)"
    row(wl, sys1, "s", "", [c["all_from_return_s"] for c in b["changes"]],
        "negative when the event arrived before the POST's answer")
    row(wl, sysn, "s", "", [c["all_from_return_s"] for c in m["changes"]], p(ms["all_from_return_s"]))
    wl = "fan-out: one subscriber has a change, from sending the POST"
    row(wl, sys1, "s", "", [c["lat_send"][0] for c in b["changes"]], "")
    row(wl, sysn, "s", sys1, [c["sub_p50_from_send_s"] for c in m["changes"]],
        f"per change, the median over the {n} subscribers; over all {n * k} deliveries "
        f"{p(ms['sub_from_send'])}")
    wl = "fan-out: the POST itself"
    row(wl, sys1, "s", "", [c["post_s"] for c in b["changes"]], "")
    row(wl, sysn, "s", sys1, [c["post_s"] for c in m["changes"]], "")
    wl = "fan-out: server CPU per change"
    row(wl, sys1, "s", "", [b["burst_cpu_s"] / k], f"utime + stime over the {k} changes ÷ {k}")
    row(wl, sysn, "s", sys1, [m["burst_cpu_s"] / k],
        f"{m['burst_cpu_s'] / k / n * 1e6:.0f} µs per subscriber; {m['burst_cpu_s']:.2f} s of CPU in "
        f"{m['burst_s']:.1f} s ({m['burst_cpu_s'] / m['burst_s'] / (os.cpu_count() or 1) * 100:.1f} % of "
        f"{os.cpu_count()} CPUs); "
        f"the client ({m['client_processes']} processes) used {m['client_cpu_s']:.2f} s")
    wl = "fan-out: connecting the subscribers"
    row(wl, sys1, "s", "", [b["connect_s"]], "")
    row(wl, sysn, "s", sys1, [m["connect_s"]], "until every stream has answered 200")
    wl = "fan-out: connecting the subscribers, until the server is quiet"
    row(wl, sys1, "s", "", [m_["quiet_after_s"] for m_ in (b,)], "under 20 ms of CPU in a 1 s window")
    row(wl, sysn, "s", "", [m["quiet_after_s"]],
        f"server CPU {m['connect_cpu_s']:.1f} s (each connection records its device online, a change "
        f"every open stream is woken for)")
    wl = "fan-out: server memory"
    row(wl + " (RSS, idle)", args.label, "MiB", "", [r["rss_idle_mib"]],
        "restarted after the setup, no subscriber yet")
    row(wl + " (RSS, subscribers connected)", sys1, "MiB", "", [b["rss_connected_mib"]], "")
    row(wl + " (RSS, subscribers connected)", sysn, "MiB", sys1, [m["rss_connected_mib"]],
        f"{(m['rss_connected_mib'] - b['rss_connected_mib']) * 1024 / (n - 1):.1f} KiB per further subscriber; "
        f"{m['threads_connected']} threads")
    row(wl + " (RSS, 12 s after the changes)", sys1, "MiB", "", [b["rss_later_mib"]], f"{b['threads_later']} threads")
    row(wl + " (RSS, 12 s after the changes)", sysn, "MiB", sys1, [m["rss_later_mib"]],
        f"{m['threads_later']} threads, still connected")
    row(wl + " (peak, VmHWM)", args.label, "MiB", "", [r["rss_hwm_mib"]],
        f"whole run; RSS right after the changes {m['rss_after_mib']:.1f} MiB, {m['threads_after']} threads")
    for other in args.absent:
        rows.append((f"fan-out: all subscribers have a change, from sending the POST ({k} changes)", other, "s", "", "",
                     "no change stream to subscribe to: nothing equivalent to measure"))
    if args.tsv:
        with open(args.tsv, "a") as f:
            for rw in rows:
                f.write("\t".join(rw) + "\n")

    log(f"{n} subscribers, {k} changes every {args.interval} s:")
    for name, s, base in (("1 subscriber", bs, b), (f"{n} subscribers", ms, m)):
        log(f"  {name}: all have it {ms_(s['all_from_send_s']['p50'])} p50 / "
            f"{ms_(s['all_from_send_s']['p99'])} p99 / {ms_(s['all_from_send_s']['max'])} max after the POST was sent "
            f"({ms_(s['all_from_return_s']['p50'])} / {ms_(s['all_from_return_s']['p99'])} / "
            f"{ms_(s['all_from_return_s']['max'])} after it returned); per subscriber from sending p50 "
            f"{ms_(s['sub_from_send']['p50'])}, p99 {ms_(s['sub_from_send']['p99'])}; "
            f"POST {ms_(s['post_s']['p50'])}; server CPU {ms_(s['cpu_per_change_s'])}/change; "
            f"client CPU {base['client_cpu_s']:.2f} s in {base['client_processes']} process(es)")
    log(f"  memory: idle {r['rss_idle_mib']:.1f} MiB, 1 subscriber {b['rss_connected_mib']:.1f} MiB, "
        f"{n} subscribers {m['rss_connected_mib']:.1f} MiB, peak {r['rss_hwm_mib']:.1f} MiB")
    log(f"  ratio: {n} vs 1 subscriber, all have it (from sending the POST), p50: "
        f"{ms['all_from_send_s']['p50'] / bs['all_from_send_s']['p50']:.1f}×")


if __name__ == "__main__":
    main()
