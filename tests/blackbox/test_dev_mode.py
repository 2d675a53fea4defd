"""Issue 15 (1, 2): --dev, and --reload serving a script that fails to load.

--dev is for a person's own machine: loopback only, reloads on each save, and a failed run()'s exception
and frames come back in the answer. With --reload (which --dev turns on), a script that fails to load keeps
the server up: /score answers 503 naming the error, the file and the line, until a saved edit loads.
Without these flags every answer stays the reference's (the last tests pin that).
"""
import json
import re
import time

from bb_http import request
from conftest import wait_workers

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
REFERENCE_500 = "An unexpected error occurred in scoring script. Check the logs for more info."

RAISES_IN_HELPER = """import json

def init():
    pass

def scale(record):
    return record["value"] / record["divisor"]

def run(data):
    return scale(json.loads(data))
"""


def score(port, body, timeout=10):
    return request(port, "POST", "/score", headers={"Content-Type": "application/json"}, body=body,
                   timeout=timeout)


def line_of(text, needle):
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def listening_addresses(port):
    """The local addresses listening on port, as dotted quads, from /proc/net/tcp."""
    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            address, port_hex = cols[1].split(":")
            if cols[3] == "0A" and int(port_hex, 16) == port:
                found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def wait_status(s, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        r = score(s.port, '{"value": 1, "divisor": 1}')
        if r.status == status:
            return r
        assert time.monotonic() < deadline, f"never answered {status}; last {r.status} {r.body[:300]}\n{s.logs()}"
        time.sleep(0.05)


def rewrite(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_dev_listens_on_loopback_only_and_says_so(server):
    s = server.start("def init():\n    pass\n\ndef run(data):\n    return data\n", args=["--dev"])
    assert listening_addresses(s.port) == {"127.0.0.1"}, listening_addresses(s.port)
    assert re.search(r"^Developer Mode \(--dev\): on\. Listening on 127\.0\.0\.1 only;", s.stdout(), re.M), s.logs()
    assert re.search(rf"Listening at: http://127\.0\.0\.1:{s.port} \(", s.stderr()), s.logs()
    plain = server.start("def init():\n    pass\n\ndef run(data):\n    return data\n")
    assert listening_addresses(plain.port) == {"0.0.0.0"}
    assert "Developer Mode" not in plain.stdout(), plain.logs()


def test_dev_answer_carries_the_exception_and_the_scripts_frames(server):
    s = server.start(RAISES_IN_HELPER, args=["--dev"])
    r = score(s.port, '{"value": 1, "divisor": 0}')
    assert r.status == 500 and r.one("x-ms-run-function-failed") == "True", r.body
    body = r.json()
    assert body["message"] == REFERENCE_500
    error = body["error"]
    assert error["type"] == "ZeroDivisionError" and error["message"] == "division by zero", error
    helper_line = line_of(RAISES_IN_HELPER, 'return record["value"]')
    run_line = line_of(RAISES_IN_HELPER, "return scale(")
    assert (error["file"], error["line"]) == (s.script, helper_line), error
    assert error["frames"] == [{"file": s.script, "line": run_line, "function": "run"},
                               {"file": s.script, "line": helper_line, "function": "scale"}], error
    assert error["traceback"].startswith("Traceback (most recent call last):"), error
    assert error["traceback"].endswith("ZeroDivisionError: division by zero"), error
    assert "azureml_inference_server_http" not in error["traceback"], error  # the server's frames are left out


def test_dev_points_at_the_scripts_line_not_the_librarys(server):
    # json.loads fails inside the standard library: the frames show it all, the location is the script's.
    s = server.start(RAISES_IN_HELPER, args=["--dev"])
    error = score(s.port, "not json").json()["error"]
    assert error["type"] == "json.decoder.JSONDecodeError", error
    assert (error["file"], error["line"]) == (s.script, line_of(RAISES_IN_HELPER, "return scale(")), error
    assert error["frames"][-1]["file"].endswith("json/decoder.py"), error


def test_dev_scoring_timeout_answer_carries_its_stack(server):
    script = "import time\n\ndef init():\n    pass\n\ndef run(data):\n    time.sleep(30)\n    return data\n"
    s = server.start(script, args=["--dev"], env={"SCORING_TIMEOUT_MS": "300"})
    r = score(s.port, "{}")
    assert r.status == 500, r.body
    body = r.json()
    assert body["message"] == "Scoring timeout after 300 ms", body
    assert body["error"]["type"] == "TimeoutError", body
    assert body["error"]["frames"] == [{"file": s.script, "line": line_of(script, "time.sleep(30)"),
                                        "function": "run"}], body


def test_dev_reloads_on_save(server):
    s = server.start("def init():\n    pass\n\ndef run(data):\n    return 'v1'\n", args=["--dev"])
    assert score(s.port, "{}").json() == "v1"
    assert "Watching" in s.stderr(), s.logs()
    rewrite(s.script, "def init():\n    pass\n\ndef run(data):\n    return 'v2'\n")
    deadline = time.monotonic() + 10
    while score(s.port, "{}").json() != "v2":
        assert time.monotonic() < deadline, s.logs()
        time.sleep(0.05)


def test_reload_keeps_serving_a_script_that_fails_to_load_at_start(server):
    broken = "import json\n\ndef init():\n    global model\n    model = json.loads('{')\n\ndef run(data):\n    return data\n"
    s = server.start(broken, args=["--reload", "--worker_count", "2"])
    assert request(s.port, "GET", "/").status == 200  # alive: a liveness probe does not restart it
    r = wait_status(s, 503)
    assert r.one("content-type") == "application/json", r.headers
    body = r.json()
    init_line = line_of(broken, "model = json.loads")
    assert body["stage"] == "init", body
    assert body["message"].startswith(f"init() raised at {s.script}, line {init_line}: json.decoder.JSONDecodeError: "
                                      "Expecting property name enclosed in double quotes"), body
    assert body["message"].endswith("Fix it and save: the server reloads it. Until then /score answers 503."), body
    assert (body["error"]["file"], body["error"]["line"]) == (s.script, init_line), body
    assert request(s.port, "GET", "/swagger.json").status == 503
    # The log says each step: the error once (one report for the generation), that it serves anyway, and
    # each worker that is up without the script.
    assert s.count_log(r"User's init function failed") == 1, s.logs()
    s.wait_for_log(r"The workers keep serving although the script failed to load \(--reload\)")
    s.wait_for_log(r"Worker with pid \d+ is up without the script \(it failed to load\)")
    # A saved fix is served.
    rewrite(s.script, "def init():\n    pass\n\ndef run(data):\n    return {'fixed': True}\n")
    assert wait_status(s, 200).json() == {"fixed": True}
    wait_workers(s, 2)
    assert s.alive() and "Worker failed to boot" not in s.stderr(), s.logs()


def test_reload_answers_a_syntax_error_and_a_missing_run_with_their_place(server):
    s = server.start("def init():\n    pass\n\ndef run(data):\n    return data\n", args=["--reload"])
    rewrite(s.script, "def init():\n    pass\n\ndef run(data):\n    return data +\n")
    body = wait_status(s, 503).json()
    assert body["stage"] == "load" and body["error"]["type"] == "SyntaxError", body
    assert (body["error"]["file"], body["error"]["line"]) == (s.script, 5), body
    assert f"The entry script failed to load at {s.script}, line 5: SyntaxError: " in body["message"], body
    mark = s.mark("stdout")
    rewrite(s.script, "def init():\n    pass\n\ndef predict(data):\n    return data\n")
    s.wait_for_log(r"does not have a run\(\) function defined", since=mark, timeout=10)
    deadline = time.monotonic() + 10
    while "predict()" not in (body := score(s.port, "{}").json())["message"]:
        assert time.monotonic() < deadline, (body, s.logs())
        time.sleep(0.05)
    assert "score.py defines predict(); the server calls run()." in body["message"], body
    assert body["error"]["type"] == "UserScriptError" and body["error"]["file"] == s.script, body


def test_metrics_ready_says_not_ready_while_the_script_fails_to_load(server):
    from conftest import free_port

    metrics = free_port()
    s = server.start("def init():\n    raise RuntimeError('no model')\n\ndef run(data):\n    return data\n",
                     args=["--reload", "--metrics_port", str(metrics)])
    wait_status(s, 503)
    r = request(metrics, "GET", "/ready")
    assert r.status == 503 and json.loads(r.body)["status"] == "script failed to load", r.body


def test_without_the_flags_answers_stay_the_references(server):
    # The same failures without --dev or --reload: the reference's 500 body exactly, and a script that
    # fails to load still stops the server with exit 3.
    s = server.start(RAISES_IN_HELPER)
    r = score(s.port, '{"value": 1, "divisor": 0}')
    assert r.status == 500 and json.loads(r.body) == {"message": REFERENCE_500}, r.body
    broken = server.start("def init():\n    raise RuntimeError('no model')\n\ndef run(data):\n    return data\n",
                          expect_ready=False)
    assert broken.wait_exit(10) == 3, broken.logs()


# The answers the I/O thread gives when run() cannot (a crash, run() stuck in native code past the scoring
# timeout, WORKER_TIMEOUT) carry the Python stacks under --dev: the line run() was on.
MISBEHAVES = "misbehaves.py"


def misbehaves_line(needle):
    from conftest import fixture_path

    with open(fixture_path(MISBEHAVES)) as f:
        return line_of(f.read(), needle)


def plain(port, body, timeout=15):
    return request(port, "POST", "/score", headers={"Content-Type": "text/plain"}, body=body, timeout=timeout)


def test_dev_crash_answer_carries_the_stack(server):
    s = server.start(MISBEHAVES, args=["--dev"])
    r = plain(s.port, "segv")
    assert r.status == 500 and r.one("x-ms-run-function-failed") == "True", r.body
    body = r.json()
    assert body["message"].startswith("The worker crashed with SIGSEGV (segmentation fault)"), body
    assert body["error"]["type"] == "SIGSEGV", body
    assert f'File "{s.script}", line {misbehaves_line("ctypes.string_at(0)")} in run' in body["error"]["stack"], body
    s.wait_for_log(r"Fatal Python error: Segmentation fault", stream="both")  # the log has it too
    plain_server = server.start(MISBEHAVES)
    assert set(plain(plain_server.port, "segv").json()) == {"message"}


def test_dev_stuck_in_native_code_answer_carries_the_stack(server):
    s = server.start(MISBEHAVES, args=["--dev"], env={"SCORING_TIMEOUT_MS": "300"})
    r = plain(s.port, "stuck:3")
    assert r.status == 500, r.body
    body = r.json()
    assert body["message"] == "Scoring timeout after 300 ms", body
    assert body["error"]["type"] == "ScoringTimeout", body
    assert f'File "{s.script}", line {misbehaves_line("libc.sleep(int(data[6:]))")} in run' in body["error"]["stack"], body
    s.wait_for_log(r"stuck in native code", stream="stdout")
    s.wait_for_log(rf'File "{s.script}", line {misbehaves_line("libc.sleep(int(data[6:]))")} in run', stream="stderr")


def test_dev_worker_timeout_answer_carries_the_stack(server):
    s = server.start(MISBEHAVES, args=["--dev"], env={"WORKER_TIMEOUT": "2"})
    r = plain(s.port, "sleep:30")
    assert r.status == 500, r.body
    body = r.json()
    assert body["message"].startswith("The worker timed out: run() took longer than WORKER_TIMEOUT (2 s)"), body
    assert body["error"]["type"] == "WorkerTimeout", body
    assert f'File "{s.script}", line {misbehaves_line("time.sleep(float(data[6:]))")} in run' in body["error"]["stack"], body


def test_dev_answer_for_an_exception_whose_str_fails(server):
    script = ("class Odd(Exception):\n    def __str__(self):\n        raise ValueError('no')\n\n"
              "def init():\n    pass\n\ndef run(data):\n    raise Odd()\n")
    s = server.start(script, args=["--dev"])
    r = score(s.port, "{}")
    assert r.status == 500, r.body
    error = r.json()["error"]
    assert error["type"] == "Odd" or error["type"].endswith(".Odd"), error
    assert error["message"] == "<str() of the exception failed>" and error["line"] == 9, error
