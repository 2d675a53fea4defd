"""Checklist items 65, 78, 79: listeners, slow init, one run() at a time per worker (docs/behaviour.md 2.1, 2.5)."""
import threading
import time

from bb_http import Conn, request


def test_c65_busy_port(server):
    first = server.start("echo_input.py")
    t0 = time.monotonic()
    second = server.start("echo_input.py", port=first.port, expect_ready=False)
    # the first keeps serving while the second retries
    r = request(first.port, "POST", "/score", body=b"during")
    assert r.status == 200 and r.json()["received"] == "during", r
    rc = second.wait_exit(8)
    elapsed = time.monotonic() - t0
    assert rc == 1, f"second server exit code {rc}\n{second.logs()}"
    assert elapsed < 7.5, f"second server took {elapsed:.1f}s to give up"
    assert "Connection in use" in second.output(), second.logs()
    assert first.alive()
    r = request(first.port, "POST", "/score", body=b"after")
    assert r.status == 200 and r.json()["received"] == "after", r
    assert second.count_log(r"Worker with pid \d+ ready", stream="both") == 0, "no worker may start"


def connect_when_listening(port, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Conn(port, timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_c78_request_during_slow_init(server):
    init_sleep = 1.0
    s = server.start("slow.py", env={"INIT_SLEEP": str(init_sleep)}, expect_ready=False)
    c = connect_when_listening(s.port)
    try:
        t_sent = time.monotonic()
        c.send_raw(Conn.build("POST", "/score", body="0"))
        assert "ready for serving traffic" not in s.stdout(), "the request must be sent while init() runs"
        r = c.read_response(timeout=10)
        t_done = time.monotonic()
    finally:
        c.close()
    assert r.status == 200, r
    j = r.json()
    assert j["start"] >= j["init_end"], "run() started before init() finished"
    assert t_done - t_sent < init_sleep + 2.0
    # the health probe is answered too once the worker is ready
    assert request(s.port, "GET", "/").status == 200


def test_c78_health_during_slow_init(server):
    # a liveness probe sent during init is queued as well (not refused), then answered
    s = server.start("slow.py", env={"INIT_SLEEP": "0.6"}, expect_ready=False)
    c = connect_when_listening(s.port)
    try:
        c.send_raw(Conn.build("GET", "/"))
        r = c.read_response(timeout=10)
    finally:
        c.close()
    assert r.status == 200 and r.body == b"Healthy", r
    assert "ready for serving traffic" in s.stdout()


def test_c79_one_run_at_a_time(server):
    s = server.start("slow.py")
    results = [None, None]

    def go(i):
        results[i] = request(s.port, "POST", "/score", body=b"0.5", timeout=10)

    t0 = time.monotonic()
    ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    elapsed = time.monotonic() - t0
    assert all(r is not None and r.status == 200 for r in results), results
    a, b = sorted((r.json() for r in results), key=lambda j: j["start"])
    assert a["pid"] == b["pid"]
    assert b["start"] >= a["end"] - 0.005, f"run() calls overlapped: {a} {b}"
    assert elapsed >= 0.95, f"two 0.5 s requests finished in {elapsed:.2f}s with one worker"


def test_c79_health_answered_while_run_busy(server):
    # docs/differences.md: GET / is answered at once by the worker's I/O thread while run() is busy
    s = server.start("slow.py")
    box = {}
    th = threading.Thread(target=lambda: box.update(r=request(s.port, "POST", "/score", body=b"1.0", timeout=10)))
    th.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    r = request(s.port, "GET", "/", timeout=5)
    dt = time.monotonic() - t0
    th.join(10)
    assert r.status == 200 and r.body == b"Healthy", r
    assert dt < 0.3, f"GET / waited {dt:.2f}s behind run()"
    assert box["r"].status == 200
