"""Issue 14, balanced dispatch (docs/architecture.md "Balanced dispatch"): no request waits behind a busy
worker while another is idle. A busy worker leaves new connections to an idle one (accept.cpp), and a
score request that arrives on a busy worker's keep-alive connection moves, with its connection, to the
first worker that is free (handoff.cpp). Nothing is lost on the way: not across a worker's death, nor
a stop."""
import json
import os
import signal
import threading
import time

from bb_http import Conn, request
from conftest import wait_workers

SCRIPT = """
import json, os, time

def init():
    pass

def run(data):
    d = json.loads(data)
    started = time.monotonic()
    time.sleep(d.get("sleep", 0))
    return {"pid": os.getpid(), "tag": d.get("tag"), "started": started}
"""


def score(conn, sleep=0, tag=None, timeout=15):
    body = json.dumps({"sleep": sleep, "tag": tag}).encode()
    return conn.request("POST", "/score", headers={"Content-Type": "application/json"}, body=body, timeout=timeout)


def score_new(port, sleep=0, tag=None, timeout=15):
    body = json.dumps({"sleep": sleep, "tag": tag}).encode()
    return request(port, "POST", "/score", headers={"Content-Type": "application/json"}, body=body, timeout=timeout)


def in_background(fn, *args, **kwargs):
    box = {}

    def target():
        try:
            box["r"] = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the test reads it
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def connections_on_one_worker(port, n=5):
    """Keep-alive connections, each having made one request; two that the same worker serves."""
    conns = [Conn(port) for _ in range(n)]
    by_pid = {}
    for c in conns:
        r = score(c)
        assert r.status == 200, r
        by_pid.setdefault(r.json()["pid"], []).append(c)
    for pid, group in by_pid.items():
        if len(group) >= 2:
            return pid, group[0], group[1], conns
    raise AssertionError(f"no two of {n} connections on one worker: {by_pid}")


def test_new_connections_go_to_the_idle_worker(server):
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    slow, box = in_background(score_new, s.port, sleep=2.0)
    time.sleep(0.3)
    waits, pids = [], set()
    for i in range(10):
        t0 = time.monotonic()
        r = score_new(s.port, tag=i)
        waits.append(time.monotonic() - t0)
        assert r.status == 200 and r.json()["tag"] == i, r
        pids.add(r.json()["pid"])
    slow.join(10)
    assert box["r"].status == 200, box
    slow_pid = box["r"].json()["pid"]
    # Without pacing, the busy worker's I/O thread takes about half of them, and they wait for its run().
    assert max(waits) < 1.0, (waits, s.logs())
    assert slow_pid not in pids, (slow_pid, pids)


def test_keep_alive_request_on_a_busy_worker_moves_to_an_idle_one(server):
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    pid, busy_conn, other_conn, conns = connections_on_one_worker(s.port)
    slow, box = in_background(score, busy_conn, sleep=2.0, tag="slow")
    time.sleep(0.3)
    t0 = time.monotonic()
    r = score(other_conn, tag="fast")
    waited = time.monotonic() - t0
    assert r.status == 200 and r.json()["tag"] == "fast", r
    assert r.json()["pid"] != pid and waited < 1.0, (waited, r.json(), pid, s.logs())
    assert r.get("Connection") != "close", r
    # The connection stays with the worker that took it: the next request is served there, on it.
    r2 = score(other_conn, tag="again")
    assert r2.status == 200 and r2.json()["pid"] == r.json()["pid"], r2
    slow.join(10)
    assert box["r"].status == 200 and box["r"].json()["pid"] == pid, box
    for c in conns:
        c.close()


def test_pipelined_requests_move_together_and_stay_in_order(server):
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    pid, busy_conn, other_conn, conns = connections_on_one_worker(s.port)
    slow, box = in_background(score, busy_conn, sleep=2.0)
    time.sleep(0.3)
    requests = b"".join(
        Conn.build("POST", "/score", headers={"Content-Type": "application/json"},
                   body=json.dumps({"tag": i}).encode())
        for i in range(3))
    t0 = time.monotonic()
    other_conn.send_raw(requests)
    answers = [other_conn.read_response(timeout=10) for _ in range(3)]
    waited = time.monotonic() - t0
    assert [a.status for a in answers] == [200, 200, 200], answers
    assert [a.json()["tag"] for a in answers] == [0, 1, 2], answers
    assert waited < 1.0 and answers[0].json()["pid"] != pid, (waited, answers)
    slow.join(10)
    for c in conns:
        c.close()


def test_liveness_on_new_connections_while_every_worker_is_busy(server):
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    slows = [in_background(score_new, s.port, sleep=2.0) for _ in range(2)]
    time.sleep(0.5)
    for _ in range(3):
        t0 = time.monotonic()
        r = request(s.port, "GET", "/", timeout=5)
        assert r.status == 200 and r.body == b"Healthy", r
        assert time.monotonic() - t0 < 0.5, s.logs()
    for t, box in slows:
        t.join(10)
        assert box["r"].status == 200, box
    assert len({box["r"].json()["pid"] for _, box in slows}) == 2


def test_one_queue_in_arrival_order_while_every_worker_is_busy(server):
    # Both workers are busy: W for 2 s, the other for 1 s. Four fast requests then arrive, one after the
    # other, on keep-alive connections that W took. They wait in the one shared queue, not in W's: the
    # other worker, free first, runs them all, in the order they came, while W is still busy.
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    conns = []
    by_pid = {}
    while len(conns) < 12 and max((len(v) for v in by_pid.values()), default=0) < 5:
        c = Conn(s.port)
        conns.append(c)
        by_pid.setdefault(score(c).json()["pid"], []).append(c)
    w, same = max(by_pid.items(), key=lambda kv: len(kv[1]))
    assert len(same) >= 5, by_pid
    slow_w, box_w = in_background(score, same[0], sleep=2.0)
    time.sleep(0.2)
    slow_other, box_other = in_background(score_new, s.port, sleep=1.0)
    time.sleep(0.3)
    results = {}

    def fast(conn, i):
        results[i] = score(conn, tag=i)

    threads = []
    for i, c in enumerate(same[1:5]):
        t = threading.Thread(target=fast, args=(c, i), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(0.05)
    for t in threads:
        t.join(10)
    slow_w.join(10)
    slow_other.join(10)
    other = box_other["r"].json()["pid"]
    assert box_w["r"].json()["pid"] == w and other != w, (box_w, box_other)
    answers = [results[i] for i in range(4)]
    assert [a.status for a in answers] == [200] * 4, answers
    assert [a.json()["pid"] for a in answers] == [other] * 4, (w, other, [a.json() for a in answers])
    starts = [a.json()["started"] for a in answers]
    assert starts == sorted(starts), [a.json() for a in answers]
    assert starts[-1] < box_w["r"].json()["started"] + 2.0, "the fast requests waited for the busy worker"
    for c in conns:
        c.close()


def test_a_handed_off_request_survives_its_first_workers_death(server):
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    pid, busy_conn, other_conn, conns = connections_on_one_worker(s.port)
    slow_here, _ = in_background(score, busy_conn, sleep=3.0)
    time.sleep(0.2)
    # Keep the other worker busy too, so the request waits in the shared queue.
    slow_there, there = in_background(score_new, s.port, sleep=1.5)
    time.sleep(0.3)
    fast, box = in_background(score, other_conn, tag="moved")
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    fast.join(15)
    assert "r" in box, (box, s.logs())
    assert box["r"].status == 200 and box["r"].json()["tag"] == "moved", box
    assert box["r"].json()["pid"] != pid
    slow_there.join(10)
    assert there["r"].status == 200, there
    slow_here.join(10)
    for c in conns:
        c.close()


def test_a_stop_answers_what_waits_in_the_shared_queue(server):
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    pid, busy_conn, other_conn, conns = connections_on_one_worker(s.port)
    slows = [in_background(score, busy_conn, sleep=1.0)]
    time.sleep(0.2)
    slows.append(in_background(score_new, s.port, sleep=1.0))
    time.sleep(0.3)
    fast, box = in_background(score, other_conn, tag="queued")
    time.sleep(0.3)
    os.kill(s.pid, signal.SIGTERM)
    fast.join(15)
    assert "r" in box, (box, s.logs())
    assert box["r"].status == 200 and box["r"].json()["tag"] == "queued", box
    assert box["r"].get("Connection") == "close", box["r"]
    for t, b in slows:
        t.join(10)
        assert b["r"].status == 200, b
    assert s.wait_exit(15) == 0, s.logs()
    for c in conns:
        c.close()


def test_a_request_that_came_as_a_long_run_began_moves_too(server):
    # Sent together with the slow request, the fast one reaches the worker before its run() has gone on
    # long enough to move a request at once; it waits there only until the next check finds the run()
    # long, then moves. (A fast keep-alive client was otherwise locked behind every slow run: answered
    # when a run ended, it sent its next request just as the next one began.)
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    pid, busy_conn, other_conn, conns = connections_on_one_worker(s.port)
    slow_request = Conn.build("POST", "/score", headers={"Content-Type": "application/json"},
                              body=json.dumps({"sleep": 2.0}).encode())
    fast_request = Conn.build("POST", "/score", headers={"Content-Type": "application/json"},
                              body=json.dumps({"tag": "fast"}).encode())
    t0 = time.monotonic()
    busy_conn.send_raw(slow_request)
    other_conn.send_raw(fast_request)
    r = other_conn.read_response(timeout=10)
    waited = time.monotonic() - t0
    assert r.status == 200 and r.json()["tag"] == "fast", r
    assert waited < 1.0 and r.json()["pid"] != pid, (waited, r.json(), pid, s.logs())
    slow = busy_conn.read_response(timeout=10)
    assert slow.status == 200 and slow.json()["pid"] == pid, slow
    for c in conns:
        c.close()


class KeepAliveClient(threading.Thread):
    """One persistent connection (a new one only after Connection: close), sending requests in a loop;
    counts answers, failures, and the times its connection moved to another worker without a close."""

    def __init__(self, port, sleep):
        super().__init__(daemon=True)
        self.port, self.sleep = port, sleep
        self.ok, self.moves, self.failures = 0, 0, []
        self.stop = threading.Event()

    def run(self):
        conn, last_pid = None, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn, last_pid = Conn(self.port), None
                r = score(conn, sleep=self.sleep, tag=self.ok)
                if r.status != 200 or r.json()["tag"] != self.ok:
                    self.failures.append((r.status, r.body[:200]))
                    continue
                self.ok += 1
                pid = r.json()["pid"]
                if last_pid is not None and pid != last_pid:
                    self.moves += 1
                last_pid = pid
                if r.get("Connection") == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - what a client would see
                self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def test_nothing_lost_while_connections_move_across_reloads(server):
    # Slow requests keep workers busy, so the fast clients' requests move between workers all along,
    # while the workers are reloaded (HUP), added (TTIN) and retired (TTOU). (A worker's death with a
    # request in the queue: test_a_handed_off_request_survives_its_first_workers_death.)
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    clients = [KeepAliveClient(s.port, 0.3) for _ in range(2)] + [KeepAliveClient(s.port, 0) for _ in range(3)]
    for c in clients:
        c.start()
    time.sleep(1.0)
    for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGHUP, signal.SIGTTOU):
        s.proc.send_signal(sig)
        time.sleep(1.0)
    time.sleep(0.5)
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join(15)
    fast = clients[2:]
    failures = [f for c in fast for f in c.failures]
    assert not failures, (failures[:5], s.logs())
    assert sum(c.ok for c in fast) > 100, [c.ok for c in fast]
    assert sum(c.moves for c in fast) > 0, "no connection moved: the test did not exercise the hand-off"
    slow_failures = [f for c in clients[:2] for f in c.failures]
    assert not slow_failures, slow_failures
    assert s.alive()


def test_a_stop_gives_what_waits_in_the_queue_to_the_first_free_worker(server):
    # Every worker is busy when the stop comes: W for 3 s, the other for 0.8 s. The request waiting in
    # the shared queue is answered by the other, once free, not after W's long run (nor cut off).
    s = server.start(SCRIPT, args=["--worker_count", "2"])
    wait_workers(s, 2)
    pid, busy_conn, other_conn, conns = connections_on_one_worker(s.port)
    long_run, long_box = in_background(score, busy_conn, sleep=3.0)
    time.sleep(0.2)
    short_run, short_box = in_background(score_new, s.port, sleep=0.8)
    time.sleep(0.2)
    fast, box = in_background(score, other_conn, tag="queued")
    time.sleep(0.1)
    t0 = time.monotonic()
    os.kill(s.pid, signal.SIGTERM)
    fast.join(15)
    waited = time.monotonic() - t0
    assert "r" in box and box["r"].status == 200 and box["r"].json()["tag"] == "queued", (box, s.logs())
    assert box["r"].json()["pid"] != pid and waited < 2.0, (waited, box["r"].json(), pid)
    long_run.join(10)
    short_run.join(10)
    assert long_box["r"].status == 200 and short_box["r"].status == 200
    assert s.wait_exit(15) == 0, s.logs()
    for c in conns:
        c.close()
