"""Supervision and crash isolation (issue 4): native crashes, worker and scoring timeouts, back-off,
graceful stop, zero-downtime reloads (SIGHUP, --reload), max_requests, TTIN/TTOU."""
import os
import re
import signal
import threading
import time

from bb_http import request
from conftest import wait_workers

MISBEHAVES = "misbehaves.py"
TEXT = {"Content-Type": "text/plain"}


def score(port, body, timeout=10):
    return request(port, "POST", "/score", headers=TEXT, body=body, timeout=timeout)


def line_of(path, needle):
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if needle in line:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


class Load:
    """Background clients, one request per connection, recording every failure."""

    def __init__(self, port, threads=2, body="x"):
        self.port, self.body = port, body
        self.ok, self.failures = 0, []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def loop(self):
        while not self.stop_event.is_set():
            try:
                r = score(self.port, self.body, timeout=10)
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failures.append((time.monotonic(), r.status, r.body[:200]))
            except Exception as e:  # noqa: BLE001
                self.failures.append((time.monotonic(), "error", repr(e)))

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(15)


def test_kill9_under_load(server, tmp_path):
    s = server.start("pid_init.py", args=["--worker_count", "2"], env={"PID_FILE": str(tmp_path / "pids")})
    wait_workers(s, 2)
    load = Load(s.port)
    killed, killed_at = [], []
    try:
        for _ in range(5):
            victim = sorted(s.workers())[0]
            killed_at.append(time.monotonic())
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            wait_workers(s, 2, timeout=10, exclude=killed)
            time.sleep(0.2)
    finally:
        load.stop()
    # Only requests in flight on the killed worker may fail: each client has one request at a time, so at
    # most one per client per kill, and each fails as the kill closes its connection, not later.
    per_kill = [0] * len(killed_at)
    for failed_at, *_ in load.failures:
        kill = max((i for i, t in enumerate(killed_at) if t <= failed_at), default=None)
        assert kill is not None and failed_at - killed_at[kill] < 2.0, (killed_at, load.failures)
        per_kill[kill] += 1
    assert max(per_kill) <= len(load.threads), (killed_at, load.failures)
    assert load.ok > 20, load.ok
    kids = wait_workers(s, 2)
    assert not kids & set(killed)
    assert s.count_log(r"was sent SIGKILL! Perhaps out of memory\?", stream="stderr") == 5, s.logs()
    assert s.alive()


def test_segfault_in_run(server):
    s = server.start(MISBEHAVES)
    r = score(s.port, "segv")
    crashed_at = time.monotonic()
    assert r.status == 500, r
    assert "SIGSEGV" in r.json()["message"], r
    assert r.one("x-ms-run-function-failed") == "True"
    assert r.has("x-request-id")
    line = line_of(s.script, "ctypes.string_at(0)")
    s.wait_for_log(rf'File "{re.escape(s.script)}", line {line} in run', stream="stderr")
    s.wait_for_log(r"Worker \(pid:\d+\) was sent SIGSEGV", stream="stderr")
    while True:  # the next request, served by the replacement
        try:
            r = score(s.port, "x", timeout=2)
            if r.status == 200:
                break
        except Exception:  # noqa: BLE001
            pass
        assert time.monotonic() - crashed_at < 1.0, s.logs()
    assert time.monotonic() - crashed_at < 1.0, s.logs()


def test_abort_in_run(server):
    s = server.start(MISBEHAVES)
    r = score(s.port, "abort")
    assert r.status == 500 and "SIGABRT" in r.json()["message"], r
    s.wait_for_ready = s.wait_ready(5)
    assert score(s.port, "x").status == 200


def test_worker_timeout_dumps_stack(server):
    s = server.start(MISBEHAVES, env={"WORKER_TIMEOUT": "3"})
    t0 = time.monotonic()
    r = score(s.port, "loop", timeout=8)
    elapsed = time.monotonic() - t0
    assert r.status == 500, r
    assert "WORKER_TIMEOUT" in r.json()["message"], r
    assert 3 <= elapsed < 5, elapsed
    s.wait_for_log(r"C \[\d+\] gunicorn.error - WORKER TIMEOUT \(pid:\d+\)$", stream="stderr")
    line = line_of(s.script, "while True:") + 1
    s.wait_for_log(rf'File "{re.escape(s.script)}", line {line - 1}|{line} in run', stream="stderr")
    s.wait_ready(5)
    assert score(s.port, "x").status == 200


def test_worker_timeout_wins_over_a_run_the_stack_dump_interrupts(server):
    """The stack dump's signal ends a blocking C call (libc sleep), so run() returns: once the arbiter
    declared the timeout, its client gets the timeout's 500, never run()'s answer."""
    s = server.start(MISBEHAVES, env={"WORKER_TIMEOUT": "3"})
    r = score(s.port, "csleep:30", timeout=10)
    assert r.status == 500, r
    assert "WORKER_TIMEOUT (3 s)" in r.json()["message"], r
    assert r.one("x-ms-run-function-failed") == "True"
    s.wait_for_log(r"WORKER TIMEOUT \(pid:\d+\)$", stream="stderr")
    s.wait_ready(10)
    assert score(s.port, "x").status == 200


def test_worker_timeout_stack_dump_is_one_block(server):
    """The stacks of a timed-out worker come out as one block, not cut by the lines other threads log
    meanwhile (stdout and stderr in one file, as a terminal or a container log shows them)."""
    s = server.start("ticks_while_looping.py", env={"WORKER_TIMEOUT": "2"}, combined_output=True)
    r = score(s.port, "x", timeout=10)
    assert r.status == 500, r
    s.wait_for_log(r"^  File .*ticks_while_looping\.py\", line \d+ in run$", stream="stdout")
    lines = s.stdout().splitlines()
    first = next(i for i, line in enumerate(lines) if re.match(r"(Current thread|Thread) 0x[0-9a-f]+", line))
    last = max(i for i, line in enumerate(lines) if line.startswith("  File "))
    block = lines[first:last + 1]
    strays = [line for line in block
              if line.strip() and not re.match(r"(Current thread|Thread) 0x[0-9a-f]+|  File |  \.\.\.$", line)]
    assert not strays, "\n".join(block)


def test_requests_behind_a_stuck_run_are_answered_at_once(server):
    """Issue 13 (7): run() stuck in native code past the scoring timeout; the requests queued behind it
    on the same worker get a 503 that says they did not run, at once, not an EOF when the worker dies."""
    s = server.start(MISBEHAVES, env={"SCORING_TIMEOUT_MS": "500"})
    results = {}

    def send(name, body):
        started = time.monotonic()
        try:
            results[name] = (score(s.port, body, timeout=10), time.monotonic() - started)
        except Exception as e:  # noqa: BLE001
            results[name] = (e, time.monotonic() - started)

    stuck = threading.Thread(target=send, args=("stuck", "stuck:30"))
    stuck.start()
    time.sleep(0.2)
    behind = [threading.Thread(target=send, args=(f"behind{i}", "x")) for i in range(2)]
    for t in behind:
        t.start()
    for t in [stuck] + behind:
        t.join(15)
    r, took = results["stuck"]
    assert r.status == 500 and r.json()["message"] == "Scoring timeout after 500 ms", r
    for i in range(2):
        r, took = results[f"behind{i}"]
        assert not isinstance(r, Exception), (r, took, s.logs())
        assert r.status == 503, r
        assert r.json()["message"].startswith("This request did not run: the request before it on this worker is "
                                              "stuck in native code past the scoring timeout."), r
        assert r.one("connection") == "close", r
        assert took < 2, (took, s.logs())
    s.wait_ready(10)
    assert score(s.port, "x").status == 200


def test_init_is_not_subject_to_worker_timeout(server):
    script = "import time\n\ndef init():\n    time.sleep(3)\n\ndef run(data):\n    return 'ok'\n"
    s = server.start(script, env={"WORKER_TIMEOUT": "1"}, ready_timeout=10)
    assert score(s.port, "x").status == 200
    assert "WORKER TIMEOUT" not in s.stderr()


def test_scoring_timeout_in_c_call(server):
    s = server.start(MISBEHAVES, env={"SCORING_TIMEOUT_MS": "500"})
    for body in ("csleep:5", "stuck:5"):
        t0 = time.monotonic()
        r = score(s.port, body)
        elapsed = time.monotonic() - t0
        assert r.status == 500, (body, r)
        assert r.json() == {"message": "Scoring timeout after 500 ms"}, r
        assert r.one("x-ms-run-function-failed") == "True"
        assert elapsed < 1.0, (body, elapsed)
        s.wait_ready(5)
        assert score(s.port, "x").status == 200
    s.wait_for_log(r"stuck in native code", stream="stdout")
    line = line_of(s.script, "libc.sleep(int(data[6:]))")
    s.wait_for_log(rf'File "{re.escape(s.script)}", line {line} in run', stream="stderr")


def test_term_completes_inflight(server):
    s = server.start(MISBEHAVES)
    result = {}

    def slow():
        result["r"] = score(s.port, "sleep:2")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    os.kill(s.pid, signal.SIGTERM)
    t.join(10)
    assert s.wait_exit(10) == 0, s.logs()
    assert result["r"].status == 200, result


def test_term_just_after_a_fork_stops_the_new_worker(server):
    # A TERM that reached a worker before it had put back the default handlers ran the arbiter's
    # handler in the worker: the arbiter took the signal (logging "Handling signal: term" twice) and the
    # new worker served on until the graceful timeout. The window is a new worker's first instants, so
    # the arbiter is kept to one CPU (the child waits there while the parent runs on) and TERM goes out
    # as soon as the reload's first worker exists; a few rounds catch it almost always without the fix.
    for _ in range(10):
        s = server.start(MISBEHAVES, args=["--worker_count", "2", "--graceful_timeout", "20"])
        before = wait_workers(s, 2)
        os.sched_setaffinity(s.pid, {0})
        os.kill(s.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not (s.workers() - before) and time.monotonic() < deadline:
            pass
        os.kill(s.pid, signal.SIGTERM)
        started = time.monotonic()
        assert s.wait_exit(30) == 0, s.logs()
        assert time.monotonic() - started < 5, s.logs()
        assert s.count_log(r"Handling signal: term$", stream="stderr") == 1, s.logs()
        s.stop()


def versioned(version):
    return ("import os\n\nVERSION = %r\n\ndef init():\n    pass\n\n"
            "def run(data):\n    return {'pid': os.getpid(), 'version': VERSION}\n" % version)


def wait_version(s, version, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = score(s.port, "x")
        if r.status == 200 and r.json()["version"] == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"version {version} never served\n{s.logs()}")


def wait_reloads(s, n, timeout=15.0):
    """Waits until n reloads have completed: the new workers ready and the previous ones gone."""
    deadline = time.monotonic() + timeout
    while s.count_log(r"New workers are ready", stream="stderr") < n:
        assert time.monotonic() < deadline, f"reload {n} did not complete\n{s.logs()}"
        time.sleep(0.05)
    return wait_workers(s, 2, timeout=timeout)


def test_hup_zero_downtime(server):
    s = server.start(versioned("v0"), args=["--worker_count", "2"])
    before = wait_workers(s, 2)
    load = Load(s.port)
    try:
        for n in range(1, 4):
            with open(s.script, "w") as f:
                f.write(versioned(f"v{n}"))
            os.kill(s.pid, signal.SIGHUP)
            wait_reloads(s, n)
            wait_version(s, f"v{n}")
    finally:
        load.stop()
    assert load.failures == [], load.failures
    assert load.ok > 20
    after = wait_workers(s, 2)
    assert not after & before, (before, after)
    assert {score(s.port, "x").json()["version"] for _ in range(6)} == {"v3"}


def test_reload_flag_and_broken_edit(server):
    s = server.start(versioned("v0"), args=["--reload", "--worker_count", "2"])
    wait_workers(s, 2)
    load = Load(s.port)
    try:
        with open(s.script, "w") as f:
            f.write(versioned("v1"))
        wait_reloads(s, 1)
        wait_version(s, "v1")
    finally:
        load.stop()
    assert load.failures == [], load.failures
    # A broken edit (issue 15, 2): what is served is what is on disk. The new generation stays up without
    # the script and /score answers 503 naming the file and the line; the old code does not answer on.
    with open(s.script, "w") as f:
        f.write("def init(:\n")
    s.wait_for_log(rf'File "{re.escape(s.script)}", line 1', stream="both", timeout=10)
    deadline = time.monotonic() + 10
    while (r := score(s.port, "x")).status != 503:
        assert time.monotonic() < deadline, s.logs()
        time.sleep(0.05)
    assert f"at {s.script}, line 1: SyntaxError" in r.json()["message"], r.body
    with open(s.script, "w") as f:
        f.write(versioned("v2"))
    wait_version(s, "v2")
    assert s.alive() and "Worker failed to boot" not in s.stderr() and "Reload failed" not in s.stderr(), s.logs()


def test_init_raises_exits_3_once(server):
    s = server.start("init_raises.py", args=["--worker_count", "2"], expect_ready=False)
    assert s.wait_exit(10) == 3, s.logs()
    assert s.count_log(r"Booting worker with pid", stream="stderr") == 2, s.logs()


def test_boot_failure_report_is_written_before_the_generation_stops(server):
    # The others fail at once; the arbiter stops everyone at the first exit, so they must wait for the
    # report of the worker writing it, or the error that says what to fix is lost.
    s = server.start("init_raises_slow_report.py", args=["--worker_count", "3"], expect_ready=False)
    assert s.wait_exit(15) == 3, s.logs()
    assert s.output().count("SlowToDescribe: described-slowly-7d41") == 1, s.logs()
    assert s.count_log(r"User's init function failed", stream="stdout") == 1, s.logs()


def test_crash_loop_backs_off(server, tmp_path):
    """Workers that die before they are ready (here init() ends the process) restart with a doubling
    delay, and the log says they died before they were ready."""
    s = server.start("init_crashes_first.py", env={"INIT_CRASH_COUNTER": str(tmp_path / "count"),
                                                   "INIT_CRASHES": "3"})
    s.wait_for_log(r"before it was ready \(while loading the script or running init\(\)\); starting a new one "
                   r"in 0\.1 s", stream="stderr")
    s.wait_for_log(r"starting a new one in 0\.2 s", stream="stderr")
    s.wait_for_log(r"starting a new one in 0\.4 s", stream="stderr")
    s.wait_ready(10)
    assert s.alive() and score(s.port, "x").status == 200


def test_request_crashes_are_replaced_at_once(server):
    """A worker that booted and then crashed on a request is replaced at once, however many did so
    before: the back-off is for workers that cannot boot."""
    s = server.start(MISBEHAVES)
    for i in range(7):
        s.wait_ready(10)
        try:
            score(s.port, "segv" if i % 2 else "exit", timeout=5)
        except Exception:  # noqa: BLE001 - "exit" ends the worker under the request
            pass
    crashed_at = time.monotonic()
    while True:
        try:
            if score(s.port, "x", timeout=2).status == 200:
                break
        except Exception:  # noqa: BLE001 - the replacement may not listen yet
            pass
        assert time.monotonic() - crashed_at < 0.5, s.logs()
    assert time.monotonic() - crashed_at < 0.5, s.logs()
    assert s.count_log(r"died while serving, [\d.]+ s after it was started: a new worker replaces it at once",
                       stream="stderr") == 7, s.logs()
    assert s.count_log(r"starting a new one in", stream="stderr") == 0, s.logs()


def test_max_requests_replaces_without_failures(server):
    s = server.start(MISBEHAVES, args=["--max_requests", "5", "--max_requests_jitter", "2"])
    pids = set()
    deadline = time.monotonic() + 10
    while len(pids) < 3 and time.monotonic() < deadline:  # replacement is checked every 250 ms
        r = score(s.port, "x")
        assert r.status == 200, r
        pids.add(r.json()["pid"])
        time.sleep(0.02)
    assert len(pids) >= 3, pids
    s.wait_for_log(r"requests \(max_requests\); replacing it", stream="stderr")


def test_ttin_ttou(server):
    s = server.start(MISBEHAVES, args=["--worker_count", "2"])
    wait_workers(s, 2)
    os.kill(s.pid, signal.SIGTTIN)
    wait_workers(s, 3)
    os.kill(s.pid, signal.SIGTTOU)
    wait_workers(s, 2)
    assert score(s.port, "x").status == 200
