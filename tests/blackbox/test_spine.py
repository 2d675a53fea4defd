"""Acceptance ("spine") tests: quickstart, multi-worker supervision, keep-alive."""
import os
import signal
import threading
import time

import pytest

from bb_http import Conn, request
from conftest import REPO


def test_spine_quickstart(server):
    script = os.path.join(REPO, "examples", "quickstart", "score.py")
    if not os.path.isfile(script):
        pytest.fail(f"examples/quickstart/score.py is missing ({script})", pytrace=False)
    s = server.start(script, cwd=os.path.dirname(script), ready_timeout=15)
    r = request(s.port, "GET", "/score")
    assert r.status == 200, r
    assert r.body == b'{"message": "Hello, World!"}'
    assert r.one("content-type") == "application/json"
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body='{"x": 1}')
    assert r.status == 200 and r.body == b'{"message": "Hello, World!"}', r
    r = request(s.port, "GET", "/")
    assert r.status == 200 and r.body == b"Healthy", r


def read_pids(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def wait_pids(path, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = read_pids(path)
        if len(pids) >= n:
            return pids
        time.sleep(0.02)
    return read_pids(path)


def test_spine_worker_respawn(server, tmp_path):
    pid_file = str(tmp_path / "pids")
    s = server.start("pid_init.py", args=["--worker_count", "3"], env={"PID_FILE": pid_file})
    pids = wait_pids(pid_file, 3, 10)
    assert len(pids) == 3 and len(set(pids)) == 3, f"expected 3 distinct init() pids, got {pids}\n{s.logs()}"
    assert s.pid not in pids, "init() must run in workers, not in the arbiter"
    assert set(pids) <= s.workers(), (pids, s.workers())
    for p in pids:
        s.wait_for_log(rf"Worker with pid {p} ready for serving traffic", timeout=10)

    results = []  # (t_done, ok, info)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                r = request(s.port, "POST", "/score", body="x", timeout=5)
                ok = r.status == 200 and "pid" in r.json()
                info = (r.status, r.body[:100])
            except Exception as e:  # noqa: BLE001
                ok, info = False, repr(e)
            results.append((time.monotonic(), ok, info))

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    time.sleep(0.5)
    victim = pids[0]
    t_kill = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    after = wait_pids(pid_file, 4, 2.0)
    t_new = time.monotonic()
    time.sleep(max(0.0, t_kill + 2.5 - time.monotonic()))
    stop.set()
    th.join(10)
    assert len(after) >= 4, f"no new worker ran init() within 2 s of killing {victim}: {after}\n{s.logs()}"
    assert t_new - t_kill <= 2.0
    new_pid = after[3]
    assert new_pid not in pids
    s.wait_for_log(rf"Worker with pid {new_pid} ready for serving traffic", timeout=max(0.1, t_kill + 2 - time.monotonic()))

    failures = [r for r in results if not r[1]]
    assert len(failures) <= 1, f"{len(failures)} failed requests around the worker kill: {failures[:5]}"
    ok_times = [t_kill] + [t for t, ok, _ in results if ok and t > t_kill]
    assert len(ok_times) > 1, "no successful request after the kill"
    gaps = [b - a for a, b in zip(ok_times, ok_times[1:])]
    assert max(gaps) <= 2.0, f"serving stopped for {max(gaps):.2f}s after the kill"
    assert sum(1 for t, ok, _ in results if ok and t < t_kill) > 0

    kids = s.workers()
    assert victim not in kids and new_pid in kids and len(kids) == 3, kids

    # the new worker takes traffic: concurrent requests spread over the workers
    seen = set()
    lock = threading.Lock()
    deadline = time.monotonic() + 5

    def burst():
        while time.monotonic() < deadline:
            with lock:
                if new_pid in seen:
                    return
            r = request(s.port, "POST", "/score", body="sleep:0.02", timeout=5)
            assert r.status == 200
            with lock:
                seen.add(r.json()["pid"])

    ts = [threading.Thread(target=burst, daemon=True) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert new_pid in seen, f"respawned worker {new_pid} never answered; responders: {seen}"
    assert len(read_pids(pid_file)) == 4, "no further worker restarts expected"


def test_spine_1000_keepalive_requests(echo_server):
    with Conn(echo_server.port) as c:
        for i in range(1000):
            r = c.request("POST", "/score", body=f"n{i}")
            assert r.status == 200, (i, r)
            assert r.body == ('{"received": "n%d", "type": "str"}' % i).encode(), (i, r)
            assert "close" not in ",".join(r.all("connection")).lower(), (i, r)


def test_spine_keepalive(echo_server):
    p = echo_server.port
    # HTTP/1.1 without Connection header: persistent
    with Conn(p) as c:
        for method, path, body in (("GET", "/", None), ("POST", "/score", "a"), ("GET", "/score", None),
                                   ("OPTIONS", "/score", None)):
            r = c.request(method, path, body=body)
            assert r.status == 200, r
            assert "close" not in ",".join(r.all("connection")).lower(), r
        assert not c.peer_closed(timeout=0.5), "server closed an idle keep-alive connection immediately"
        r = c.request("GET", "/")
        assert r.status == 200
    # Connection: close is honoured
    with Conn(p) as c:
        r = c.request("POST", "/score", headers={"Connection": "close"}, body="a")
        assert r.status == 200, r
        assert "close" in ",".join(r.all("connection")).lower(), r
        assert c.peer_closed(timeout=2.0), "server did not close after Connection: close"
    with Conn(p) as c:
        r = c.request("GET", "/", headers={"Connection": "close"})
        assert r.status == 200 and r.body == b"Healthy", r
        assert c.peer_closed(timeout=2.0), "server did not close after Connection: close"
    # HTTP/1.0 without keep-alive: closed after the response
    with Conn(p) as c:
        r = c.request("GET", "/", version="HTTP/1.0")
        assert r.status == 200 and r.body == b"Healthy", r
        assert c.peer_closed(timeout=2.0), "server did not close an HTTP/1.0 connection"


def test_spine_pipelining(echo_server):
    with Conn(echo_server.port) as c:
        reqs = b"".join(Conn.build("POST", "/score", body=f"p{i}") for i in range(5))
        reqs += Conn.build("GET", "/")
        c.send_raw(reqs)
        for i in range(5):
            r = c.read_response()
            assert r.status == 200, r
            assert r.json()["received"] == f"p{i}", r
        r = c.read_response()
        assert r.status == 200 and r.body == b"Healthy"


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_spine_sigterm_graceful(server):
    s = server.start("echo_input.py", args=["--worker_count", "2"])
    workers = s.workers()
    assert len(workers) >= 2, workers
    os.kill(s.pid, signal.SIGTERM)
    rc = s.wait_exit(10)
    assert rc == 0, f"SIGTERM should exit 0, got {rc}\n{s.logs()}"
    deadline = time.monotonic() + 2
    alive = set(workers)
    while alive and time.monotonic() < deadline:
        alive = {w for w in alive if _running(w)}
        time.sleep(0.05)
    assert not alive, f"workers {alive} outlived the arbiter"
