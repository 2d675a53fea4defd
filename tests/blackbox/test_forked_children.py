"""Processes a script forks (multiprocessing, os.fork) start as children of plain Python would: the
worker's signal handling and crash responder stay the worker's (issue 13, item 1)."""
from bb_http import request

TEXT = {"Content-Type": "text/plain"}


def score(port, body):
    r = request(port, "POST", "/score", headers=TEXT, body=body, timeout=20)
    assert r.status == 200, r
    return r.json()


def test_forked_children_keep_default_signals(server, tmp_path):
    counter = tmp_path / "inits"
    s = server.start("forks.py", env={"INIT_COUNTER": str(counter)})
    pid = score(s.port, "x")["pid"]

    pool = score(s.port, "pool")
    assert pool == {"pid": pid, "factorials": [1, 1, 2, 6, 24, 120]}, s.logs()
    # SIGTERM and SIGINT end the child, not the parent (they used to reach the parent's loop)
    assert score(s.port, "term") == {"pid": pid, "child": "SIGTERM"}, s.logs()
    assert score(s.port, "int") == {"pid": pid, "child": "SIGINT"}, s.logs()
    # a child's segfault is the child's: the parent's client gets the parent's answer
    assert score(s.port, "segv") == {"pid": pid, "child": "SIGSEGV"}, s.logs()

    assert score(s.port, "x")["pid"] == pid, s.logs()
    assert s.alive()
    assert counter.read_text() == "x", "init() ran again: the worker was replaced\n" + s.logs()
    assert s.count_log(r"Worker \(pid:\d+\) (was sent|exited|died)", stream="stderr") == 0, s.logs()
    assert "Handling signal" not in s.stdout() + s.stderr(), s.logs()
