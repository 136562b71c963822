#!/usr/bin/env python3
"""Draws docs/grafana/kvserver.png: the panels of docs/grafana/kvserver.json, computed the
way Prometheus would from /metrics recorded off a real 3-node cluster, for machines
without Grafana (the picture in docs/operations.md).

The run: three kvservers on 127.0.0.1:3200-3202 (Raft 4200-4202) in a temporary
directory, kvbench writing and reading through all three for --seconds, /metrics of every
node scraped once a second, the leader killed with SIGKILL at 40% of the run and restarted
at 60%. The series: rates over a 5 s window (as rate(...[5s])), quantiles by linear
interpolation inside the histogram bucket (as histogram_quantile), summed over nodes as
the dashboard's queries sum them.

  scripts/dashboard-picture.py [--build build] [--seconds 80] [--out docs/grafana/kvserver.png]

Needs kvserver and kvbench built in --build (cmake --build build --target kvserver
kvbench) and gnuplot (Debian: apt-get install gnuplot-nox). The recorded scrapes and the
series stay in the temporary directory, printed at the end.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTTP = [3200, 3201, 3202]
RAFT = [4200, 4201, 4202]
WINDOW = 5  # seconds, the rate window
# Label values may hold braces (route="/kv/{key}"): quoted strings are matched whole.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(port, path, timeout=1.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def parse(text):
    """{(name, frozenset(labels)): value} of one scrape."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or line.startswith("#"):
            continue
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class Cluster:
    def __init__(self, binary, root):
        self.binary, self.root, self.procs = binary, root, {}

    def start(self, i, join):
        args = [self.binary, "-id", f"node{i}", "-laddr", f"127.0.0.1:{HTTP[i]}",
                "-raddr", f"127.0.0.1:{RAFT[i]}", "-data", os.path.join(self.root, f"node{i}")]
        if join:
            args += ["-join", f"127.0.0.1:{HTTP[0]}"]
        log = open(os.path.join(self.root, f"node{i}.log"), "ab")
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if json.loads(get(HTTP[i], "/status")).get("leader"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit(f"node{i} did not come up; see {self.root}/node{i}.log")

    def leader(self):
        for i in self.procs:
            try:
                if json.loads(get(HTTP[i], "/status"))["role"] == "Leader":
                    return i
            except (OSError, KeyError, ValueError):
                pass
        return None

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def record(build, seconds, work):
    cluster = Cluster(os.path.join(build, "kvserver", "kvserver"), work)
    scrapes = []  # (t, node, {series: value})
    events = []
    bench = None
    try:
        cluster.start(0, join=False)
        cluster.start(1, join=True)
        cluster.start(2, join=True)
        bench = subprocess.Popen(
            [os.path.join(build, "bench", "kvbench"), "--addr",
             ",".join(f"127.0.0.1:{p}" for p in HTTP), "--connections", "8", "--warmup", "0",
             "--duration", str(seconds + 5), "--read-ratio", "0.5", "--timeout", "1"],
            stdout=open(os.path.join(work, "kvbench.txt"), "wb"), stderr=subprocess.STDOUT)
        start = time.monotonic()
        killed = None
        for tick in range(seconds + 1):
            time.sleep(max(0.0, start + tick - time.monotonic()))
            if tick == int(seconds * 0.4):
                killed = cluster.leader()
                if killed is not None:
                    cluster.procs[killed].kill()
                    cluster.procs[killed].wait()
                    events.append((tick, f"node{killed} (leader) killed"))
            if tick == int(seconds * 0.6) and killed is not None:
                cluster.start(killed, join=False)
                events.append((time.monotonic() - start, f"node{killed} restarted"))
            for i in range(3):
                try:
                    scrapes.append((time.monotonic() - start, i, parse(get(HTTP[i], "/metrics"))))
                except OSError:
                    pass
    finally:
        if bench:
            bench.kill()
        cluster.stop()
    return scrapes, events


def bucket_quantile(q, buckets):
    """histogram_quantile: buckets is [(le, cumulative count)] sorted by le."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-12)
        prev_le, prev_c = le, c
    return prev_le


def series(scrapes, seconds):
    by_node = {i: [(t, s) for t, n, s in scrapes if n == i] for i in range(3)}

    def at(node, t):  # the last scrape of `node` at or before t
        best = None
        for ts, s in by_node[node]:
            if ts <= t:
                best = s
        return best

    def delta(node, t, name, match=lambda labels: True, group=None):
        """Increase over (t - WINDOW, t] per group label value; a counter reset (restart)
        counts from zero, as Prometheus's rate does."""
        a, b = at(node, t - WINDOW), at(node, t)
        if a is None or b is None:
            return {}
        out = {}
        for (n, labels), v in b.items():
            if n != name or not match(dict(labels)):
                continue
            old = a.get((n, labels), 0.0)
            inc = v - old if v >= old else v
            key = dict(labels).get(group) if group else ""
            out[key] = out.get(key, 0.0) + inc
        return out

    rows = []
    for t in range(WINDOW, seconds + 1):
        row = {"t": t}
        total, errors, leader_changes = {}, 0.0, 0.0
        lat = {}
        for i in range(3):
            for route, inc in delta(i, t, "kv_http_requests_total", group="route").items():
                total[route] = total.get(route, 0.0) + inc / WINDOW
            errors += sum(delta(i, t, "kv_http_requests_total",
                                lambda l: l.get("code", "").startswith("5")).values()) / WINDOW
            leader_changes += sum(delta(i, t, "kv_raft_leader_changes_total").values())
            for le, inc in delta(i, t, "kv_http_request_duration_seconds_bucket",
                                 lambda l: l.get("route") == "/kv/{key}", group="le").items():
                lat[le] = lat.get(le, 0.0) + inc
        row["req_kv"] = total.get("/kv/{key}", 0.0)
        row["errors"] = errors
        row["leader_changes"] = leader_changes
        buckets = sorted((float(le.replace("+Inf", "inf")), c) for le, c in lat.items())
        row["lat_p50"] = bucket_quantile(0.5, buckets)
        row["lat_p99"] = bucket_quantile(0.99, buckets)
        commit = {}
        appended = fsyncs = 0.0
        for i in range(3):
            for le, inc in delta(i, t, "kv_raft_commit_latency_seconds_bucket", group="le").items():
                commit[le] = commit.get(le, 0.0) + inc
            appended += sum(delta(i, t, "kv_raft_bytes_appended_total").values()) / WINDOW
            fsyncs += sum(delta(i, t, "kv_raft_fsyncs_total").values()) / WINDOW
        buckets = sorted((float(le.replace("+Inf", "inf")), c) for le, c in commit.items())
        row["commit_p50"] = bucket_quantile(0.5, buckets)
        row["commit_p99"] = bucket_quantile(0.99, buckets)
        row["appended_kib"] = appended / 1024
        row["fsyncs"] = fsyncs
        rows.append(row)
    return rows


def draw(rows, events, out, work):
    cols = ["t", "req_kv", "errors", "lat_p50", "lat_p99", "leader_changes", "commit_p50",
            "commit_p99", "appended_kib", "fsyncs"]
    dat = os.path.join(work, "series.dat")
    with open(dat, "w") as f:
        f.write("# " + " ".join(cols) + "\n")
        for r in rows:
            vals = [r[c] for c in cols]
            f.write(" ".join("NaN" if v is None else
                             (f"{v * 1000:.3f}" if c.startswith(("lat_", "commit_")) else f"{v:.3f}")
                             for c, v in zip(cols, vals)) + "\n")
    marks = "\n".join(f'set arrow from {t:.1f}, graph 0 to {t:.1f}, graph 1 nohead dt 2 lc rgb "red"'
                      for t, _ in events)
    labels = ", ".join(e for _, e in events)
    gp = f"""
set terminal pngcairo size 1400,900 font "sans,10"
set output "{out}"
set multiplot layout 3,2 title "kvserver dashboard (docs/grafana/kvserver.json), 3 nodes under kvbench: {labels}"
set key top left
set grid
set xlabel "seconds"
{marks}
set title "Requests per second, /kv/{{key}}"
plot "{dat}" using 1:2 with lines lw 2 title "req/s"
set title "Errors per second (5xx)"
plot "{dat}" using 1:3 with lines lw 2 lc rgb "red" title "5xx/s"
set title "Request latency, /kv/{{key}} (ms)"
set logscale y
plot "{dat}" using 1:4 with lines lw 2 title "p50", "" using 1:5 with lines lw 2 title "p99"
unset logscale y
set title "Leader changes (sum over nodes, per 5 s)"
plot "{dat}" using 1:6 with steps lw 2 title "leader changes"
set title "Commit latency on the leader (ms)"
set logscale y
plot "{dat}" using 1:7 with lines lw 2 title "p50", "" using 1:8 with lines lw 2 title "p99"
unset logscale y
set title "Disk: log KiB appended/s and fsyncs/s (sum over nodes)"
plot "{dat}" using 1:9 with lines lw 2 title "KiB/s", "" using 1:10 with lines lw 2 title "fsyncs/s"
unset multiplot
"""
    script = os.path.join(work, "dashboard.gp")
    with open(script, "w") as f:
        f.write(gp)
    subprocess.run(["gnuplot", script], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=80)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "grafana", "kvserver.png"))
    a = ap.parse_args()
    if subprocess.run(["sh", "-c", "command -v gnuplot"], capture_output=True).returncode != 0:
        sys.exit("dashboard-picture: gnuplot not found (Debian: apt-get install gnuplot-nox)")
    work = tempfile.mkdtemp(prefix="kv-dashboard-")
    scrapes, events = record(a.build, a.seconds, work)
    with open(os.path.join(work, "scrapes.json"), "w") as f:
        json.dump([(t, n, {f"{k[0]}{sorted(k[1])}": v for k, v in s.items()})
                   for t, n, s in scrapes], f)
    draw(series(scrapes, a.seconds), events, a.out, work)
    print(f"dashboard-picture: wrote {a.out}; recording and series in {work}")


if __name__ == "__main__":
    main()
