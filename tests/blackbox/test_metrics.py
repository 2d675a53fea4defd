"""Metrics and readiness (issue 6): --metrics_port serves GET /metrics (Prometheus text 0.0.4, summed over
all workers from the shared table) and GET /ready (200 while serving, 503 while the server stops); the
scoring port keeps the reference's 404s."""
import math
import os
import re
import signal
import threading
import time

from bb_http import request
from conftest import free_port, run_cli, wait_workers

MISBEHAVES = "misbehaves.py"  # run(): {"pid": ...}; "sleep:S", "segv", ...
TEXT = {"Content-Type": "text/plain"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{({_LABEL}(?:,{_LABEL})*)\}})? (\S+)(?: -?\d+)?$")
_HELP = re.compile(rf"^# HELP ({_NAME}) (.*)$")
_TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")
_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_exposition(text):
    """Parses the text format strictly: every line is a HELP, a TYPE or a sample of the family its TYPE
    declared; histograms have cumulative buckets in increasing le order ending with +Inf == _count.
    Returns {family: {"type": t, "help": h, "samples": [(name, {labels}, value)]}}."""
    assert text.endswith("\n"), text[-200:]
    families = {}
    current = None
    for line in text.splitlines():
        m = _HELP.match(line)
        if m:
            assert m.group(1) not in families, f"family {m.group(1)} described twice"
            current = families.setdefault(m.group(1), {"type": None, "help": m.group(2), "samples": []})
            continue
        m = _TYPE.match(line)
        if m:
            assert current is not None and m.group(1) in families and current is families[m.group(1)], line
            assert current["type"] is None, f"second TYPE line: {line}"
            current["type"] = m.group(2)
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a valid exposition line: {line!r}"
        name, labels, value = m.group(1), dict(_LABEL_PAIR.findall(m.group(2) or "")), float(m.group(3))
        assert current is not None and current["type"], f"sample before its TYPE: {line}"
        family = [f for f in families if name == f or (current["type"] == "histogram" and name in
                                                        (f + "_bucket", f + "_sum", f + "_count"))]
        assert family == [next(k for k, v in families.items() if v is current)], f"sample outside its family: {line}"
        current["samples"].append((name, labels, value))
    for name, family in families.items():
        if family["type"] == "histogram":
            check_histogram(name, family["samples"])
    return families


def check_histogram(name, samples):
    series = {}
    for sample_name, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sample_name == name + "_bucket":
            s["buckets"].append((float(labels["le"]), value))
        elif sample_name == name + "_sum":
            s["sum"] = value
        else:
            s["count"] = value
    assert series, f"histogram {name} has no series"
    for key, s in series.items():
        les = [le for le, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        assert les == sorted(les) and len(set(les)) == len(les), (name, key, les)
        assert les[-1] == math.inf, (name, key, les)
        assert all(a <= b for a, b in zip(counts, counts[1:])), f"{name}{key} buckets not cumulative: {counts}"
        assert counts[-1] == s["count"], f"{name}{key}: +Inf {counts[-1]} != _count {s['count']}"
        assert s["sum"] is not None and s["sum"] >= 0


def scrape(port):
    r = request(port, "GET", "/metrics")
    assert r.status == 200, r
    assert r.one("Content-Type") == CONTENT_TYPE
    return parse_exposition(r.text)


def value(families, family, name=None, **labels):
    """The value of the one sample of `family` named `name` (default: the family) with these labels; 0
    when there is none (a (route, status) pair not seen yet)."""
    name = name or family
    found = [v for n, l, v in families[family]["samples"]
             if n == name and all(l.get(k) == str(want) for k, want in labels.items())]
    assert len(found) <= 1, (family, labels, found)
    return found[0] if found else 0


def counter_samples(families):
    """Every sample that must never go down: counters and histogram buckets, sums and counts."""
    out = {}
    for family, f in families.items():
        if f["type"] in ("counter", "histogram"):
            for n, l, v in f["samples"]:
                out[(n, tuple(sorted(l.items())))] = v
    return out


def start(server, *args, script=MISBEHAVES, workers=2, env=None):
    metrics_port = free_port()
    s = server.start(script, args=["--worker_count", str(workers), "--metrics_port", str(metrics_port), *args],
                     env=env)
    s.metrics_port = metrics_port
    wait_workers(s, workers)
    return s


def test_counters_sum_the_requests_of_both_workers(server):
    s = start(server)
    base = scrape(s.metrics_port)  # start() waited with GET / on the scoring port: counted
    families = base
    assert value(families, "azmlinfsrv_build_info", version="1.5.1") == 1
    assert re.fullmatch(r"3\.\d+\.\d+\S*",
                        next(l["python"] for _, l, _ in families["azmlinfsrv_build_info"]["samples"]))

    # Score until both workers have answered (new connection each time: the kernel spreads them).
    pids, scores = set(), 0
    while len(pids) < 2 or scores < 6:
        r = request(s.port, "POST", "/score", headers=TEXT, body="x")
        assert r.status == 200, r
        pids.add(r.json()["pid"])
        scores += 1
        assert scores < 400, f"one worker never answered: {pids}"
    for _ in range(7):
        assert request(s.port, "GET", "/").status == 200
    for _ in range(3):
        assert request(s.port, "GET", "/nope").status == 404
    for _ in range(2):
        assert request(s.port, "GET", "/swagger.json").status == 200
    for _ in range(4):
        assert request(s.port, "DELETE", "/score").status == 405
    assert request(s.port, "GET", "/swagger.json?version=9").status == 404
    # A transport error: a body over the limit is refused from its Content-Length.
    big = request(s.port, "POST", "/score", headers={**TEXT, "Content-Length": str(200 * 1024 * 1024)}, body=b"")
    assert big.status == 413, big

    families = scrape(s.metrics_port)
    def requests(route, status):
        return (value(families, "azmlinfsrv_requests_total", route=route, status=status)
                - value(base, "azmlinfsrv_requests_total", route=route, status=status))

    assert requests("score", 200) == scores
    assert requests("health", 200) == 7
    assert requests("other", 404) == 3
    assert requests("swagger", 200) == 2
    assert requests("swagger", 404) == 1
    assert requests("score", 405) == 4
    assert requests("score", 413) == 1
    total = sum(v for _, _, v in families["azmlinfsrv_requests_total"]["samples"])
    total -= sum(v for _, _, v in base["azmlinfsrv_requests_total"]["samples"])
    assert total == scores + 7 + 3 + 2 + 4 + 1 + 1, families["azmlinfsrv_requests_total"]
    # Durations: every request read completely, by route; run() once per score request.
    duration = "azmlinfsrv_request_duration_seconds"

    def durations(route):
        return (value(families, duration, duration + "_count", route=route)
                - value(base, duration, duration + "_count", route=route))
    assert durations("score") == scores + 4
    assert durations("health") == 7
    assert durations("other") == 3
    assert durations("swagger") == 3
    run = "azmlinfsrv_run_duration_seconds"
    assert value(families, run, run + "_count") == scores
    assert 0 < value(families, run, run + "_sum") < scores  # each run() well under a second
    assert value(families, "azmlinfsrv_requests_in_flight") == 0
    memory = {l["pid"]: v for _, l, v in families["azmlinfsrv_worker_resident_memory_bytes"]["samples"]}
    assert set(memory) == {str(p) for p in s.workers()}, (memory, s.workers())
    assert all(v > 4 * 1024 * 1024 for v in memory.values()), memory
    assert value(families, "azmlinfsrv_worker_restarts_total", cause="crash") == 0
    # Scrapes and probes are not counted, and not in the access log.
    scrape(s.metrics_port)
    assert request(s.metrics_port, "GET", "/ready").status == 200
    again = scrape(s.metrics_port)
    assert again["azmlinfsrv_requests_total"] == families["azmlinfsrv_requests_total"]
    assert "/metrics" not in s.stdout() and "/ready" not in s.stdout()


def test_kill9_counts_a_crash_and_counters_do_not_go_down(server):
    s = start(server)
    for _ in range(20):
        assert request(s.port, "POST", "/score", headers=TEXT, body="x").status == 200
        assert request(s.port, "GET", "/").status == 200
    before = scrape(s.metrics_port)
    assert value(before, "azmlinfsrv_requests_total", route="score", status=200) == 20

    victim = sorted(s.workers())[0]
    os.kill(victim, signal.SIGKILL)
    wait_workers(s, 2, exclude=[victim])
    after = scrape(s.metrics_port)
    assert value(after, "azmlinfsrv_worker_restarts_total", cause="crash") == \
        value(before, "azmlinfsrv_worker_restarts_total", cause="crash") + 1
    old, new = counter_samples(before), counter_samples(after)
    for key, v in old.items():
        assert new.get(key, 0) >= v, f"{key} went down from {v} to {new.get(key)} after a worker restart"
    # The dead worker's requests are still counted: its slot kept them.
    assert after["azmlinfsrv_requests_total"] == before["azmlinfsrv_requests_total"]
    memory = {l["pid"] for _, l, _ in after["azmlinfsrv_worker_resident_memory_bytes"]["samples"]}
    assert str(victim) not in memory and memory == {str(p) for p in s.workers()}

    # A native crash in run() counts too; the replacement goes on counting in the same totals.
    assert request(s.port, "POST", "/score", headers=TEXT, body="segv").status == 500
    s.wait_for_log(r"Worker \(pid:\d+\) was sent SIGSEGV", stream="stderr")
    wait_workers(s, 2)
    for _ in range(5):
        assert request(s.port, "POST", "/score", headers=TEXT, body="x").status == 200
    last = scrape(s.metrics_port)
    assert value(last, "azmlinfsrv_worker_restarts_total", cause="crash") == \
        value(before, "azmlinfsrv_worker_restarts_total", cause="crash") + 2
    assert value(last, "azmlinfsrv_requests_total", route="score", status=200) == 25
    for key, v in counter_samples(after).items():
        assert counter_samples(last).get(key, 0) >= v, key


def test_reload_and_max_requests_are_counted(server):
    # One worker, so exactly one passes max_requests (its replacement serves nothing afterwards).
    s = start(server, "--max_requests", "5", workers=1)
    first = s.workers()
    for _ in range(12):
        assert request(s.port, "POST", "/score", headers=TEXT, body="x").status == 200
    s.wait_for_log(r"has served \d+ requests \(max_requests\)", stream="stderr")
    deadline = time.monotonic() + 10
    while value(scrape(s.metrics_port), "azmlinfsrv_worker_restarts_total", cause="max_requests") < 1:
        assert time.monotonic() < deadline, s.logs()
        time.sleep(0.1)
    wait_workers(s, 1, exclude=first)

    families = scrape(s.metrics_port)
    reloads = value(families, "azmlinfsrv_worker_restarts_total", cause="reload")
    mark = s.mark("stderr")
    os.kill(s.pid, signal.SIGHUP)
    s.wait_for_log(r"New workers are ready", stream="stderr", since=mark, timeout=15)
    families = scrape(s.metrics_port)
    assert value(families, "azmlinfsrv_worker_restarts_total", cause="reload") == reloads + 1
    assert value(families, "azmlinfsrv_worker_restarts_total", cause="max_requests") == 1
    assert value(families, "azmlinfsrv_worker_restarts_total", cause="crash") == 0
    assert value(families, "azmlinfsrv_requests_total", route="score", status=200) == 12


def test_ready_then_503_during_a_graceful_stop(server):
    s = start(server, "--graceful_timeout", "20")
    r = request(s.metrics_port, "GET", "/ready")
    assert r.status == 200 and r.json() == {"status": "ready"}, r
    assert r.one("Content-Type") == "application/json"

    slow = {}
    t = threading.Thread(target=lambda: slow.update(
        r=request(s.port, "POST", "/score", headers=TEXT, body="sleep:3", timeout=20)))
    t.start()
    deadline = time.monotonic() + 5
    while value(scrape(s.metrics_port), "azmlinfsrv_requests_in_flight") != 1:
        assert time.monotonic() < deadline, s.logs()
        time.sleep(0.02)
    os.kill(s.pid, signal.SIGTERM)

    # While the slow request finishes, readiness says 503; metrics are still served; liveness is gone
    # from the scoring port (its listener is closed), which is what an orchestrator's probes expect.
    deadline = time.monotonic() + 2
    while True:
        r = request(s.metrics_port, "GET", "/ready")
        if r.status == 503:
            break
        assert time.monotonic() < deadline, (r, s.logs())
        time.sleep(0.02)
    assert r.json()["status"] == "stopping" and "stopping" in r.json()["message"], r
    assert r.one("Connection") == "close"
    assert value(scrape(s.metrics_port), "azmlinfsrv_requests_in_flight") == 1
    assert t.is_alive()
    t.join(20)
    assert slow["r"].status == 200, slow
    assert s.wait_exit(10) == 0, s.logs()


def test_metrics_port_serves_only_metrics_and_ready(server):
    s = start(server, workers=1)
    for method, path, status in [("GET", "/", 404), ("POST", "/score", 404), ("GET", "/swagger.json", 404),
                                 ("POST", "/metrics", 405), ("DELETE", "/ready", 405)]:
        r = request(s.metrics_port, method, path, headers=TEXT, body="x" if method == "POST" else None)
        assert r.status == status, (method, path, r)
        assert r.one("Content-Type") == "application/json" and "message" in r.json(), r
        if status == 405:
            assert r.one("Allow") == "GET, HEAD"
    head = request(s.metrics_port, "HEAD", "/metrics")
    assert head.status == 200 and head.body == b"" and int(head.one("Content-Length")) > 1000
    assert request(s.metrics_port, "GET", "/metrics?x=1").status == 200
    # The scoring port keeps the reference's answers for these paths.
    for path in ("/metrics", "/ready"):
        r = request(s.port, "GET", path)
        assert r.status == 404 and "not found" in r.json()["message"], r


def test_no_metrics_port_by_default(server):
    s = server.start(MISBEHAVES)
    assert request(s.port, "GET", "/metrics").status == 404
    assert "Metrics listener" not in s.stderr()


def test_metrics_port_from_the_environment(server):
    port = free_port()
    s = server.start(MISBEHAVES, env={"AZMLINFSRV_METRICS_PORT": str(port)})
    assert request(port, "GET", "/ready").status == 200
    s.wait_for_log(rf"Metrics listener at: 0\.0\.0\.0:{port}", stream="stderr")


def test_bad_metrics_ports_stop_the_server():
    port = free_port()
    rc, out, err, _ = run_cli(["--entry_script", "x.py", "--port", str(port), "--metrics_port", str(port)])
    assert rc == 1 and f"The metrics port {port} is also the scoring port" in out, (out, err)
    rc, out, err, _ = run_cli(["--entry_script", "x.py", "--metrics_port", "70000"])
    assert rc == 1 and "argument --metrics_port: invalid validate_port value: '70000'" in err, err
    rc, out, err, _ = run_cli(["--entry_script", "x.py"], env={"AZMLINFSRV_METRICS_PORT": "http"})
    assert rc == 1 and "AZMLINFSRV_METRICS_PORT='http' is not valid" in out, (out, err)
