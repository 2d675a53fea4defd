"""Issue 15 (3, 4): --capture DIR saves each request whose run() failed; --replay FILE runs it again in one
process, without HTTP, through the same input path; --pdb and breakpoint() stop at the terminal.

A replay is judged against the server: the same request, sent over HTTP and replayed from its capture,
must reach run() the same way (the scripts here echo what they received).
"""
import base64
import glob
import hashlib
import json
import os
import re
import subprocess
import threading
import time

from bb_http import request
from conftest import base_env, require_binary

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"

# Echoes what run() received when the body is not "fail"; raises otherwise. Raw mode: it sees everything.
RAW_ECHO = """import hashlib
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    body = request.get_data()
    if body == b"fail":
        raise ValueError("asked to fail")
    seen = {"method": request.method, "path": request.path, "query": request.query_string.decode(),
            "custom": request.headers.get("X-Custom"), "sha": hashlib.sha256(body).hexdigest(), "size": len(body)}
    if body.startswith(b"\\xff"):
        raise ValueError("binary: " + str(seen))
    return AMLResponse(seen, 201, {"X-Seen": "yes"}, json_str=True)
"""

JSON_SCRIPT = """import json


def init():
    pass


def run(data):
    values = json.loads(data)["values"]
    return {"total": sum(values)}
"""


def captures(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, "*.json")) if not p.endswith("latest.json"))


def wait_captures(folder, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(captures(folder)) < n:
        assert time.monotonic() < deadline, f"{len(captures(folder))} captures in {folder}, expected {n}"
        time.sleep(0.05)
    return captures(folder)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def replay(script, file, *args, stdin=None, env=None, timeout=60):
    argv = [require_binary(), "--entry_script", script, "--replay", file, *args]
    return subprocess.run(argv, input=stdin, capture_output=True, env=base_env(env), timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def split_answer(stdout):
    head, _, body = stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def test_a_raised_run_is_saved_with_everything_and_the_log_names_it(server, tmp_path):
    folder = str(tmp_path / "caps")
    s = server.start(RAW_ECHO, args=["--capture", folder])
    r = request(s.port, "POST", "/score?a=1&b=two", headers={"X-Custom": "c1", "Content-Type": "text/plain",
                                                             "x-request-id": "req-42"}, body=b"fail")
    assert r.status == 500
    [path] = wait_captures(folder, 1)
    assert os.path.basename(path).endswith("-req-42.json"), path
    saved = load(path)
    assert saved["format"] == "azmlinfsrv-capture/1" and saved["failure"] == "exception" and saved["status"] == 500
    assert (saved["method"], saved["path"], saved["query"]) == ("POST", "/score", "a=1&b=two"), saved
    assert ["X-Custom", "c1"] in saved["headers"] and saved["request_id"] == "req-42", saved
    assert saved["body"] == "fail" and "body_base64" not in saved, saved
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", saved["time"]), saved
    assert saved["traceback"].startswith("Traceback (most recent call last):"), saved
    assert saved["traceback"].endswith("ValueError: asked to fail"), saved
    assert os.readlink(os.path.join(folder, "latest.json")) == os.path.basename(path)
    line = s.wait_for_log(rf"^{TS} E \[\d+\] azmlinfsrv - Saved the failed request to (\S+); run it again with: "
                          rf"azmlinfsrv --entry_script (\S+) --replay (\S+) \(--pdb to stop where it fails\)$")
    assert line.group(1) == path and line.group(3) == path and line.group(2) == s.script, line.group(0)
    # A request that succeeds is not saved.
    assert request(s.port, "POST", "/score", body=b"fine").status == 201
    time.sleep(0.2)
    assert len(captures(folder)) == 1


def test_replay_reaches_run_as_the_server_did(server, tmp_path):
    # Raw mode sees method, path, query, headers and the exact body: a binary body is saved in base64 and
    # replayed byte for byte.
    folder = str(tmp_path / "caps")
    s = server.start(RAW_ECHO, args=["--capture", folder])
    body = b"\xff\xfe\x00binary\x80"
    r = request(s.port, "POST", "/score?q=9", headers={"X-Custom": "c2", "Content-Type": "application/octet-stream"},
                body=body)
    assert r.status == 500
    [path] = wait_captures(folder, 1)
    saved = load(path)
    assert base64.b64decode(saved["body_base64"]) == body and "body" not in saved, saved
    done = replay(s.script, path)
    assert done.returncode == 1, done.stderr.decode()
    err = done.stderr.decode()
    expected = {"method": "POST", "path": "/score", "query": "q=9", "custom": "c2",
                "sha": hashlib.sha256(body).hexdigest(), "size": len(body)}
    assert f"ValueError: binary: {expected}" in err, err
    status, headers, answer = split_answer(done.stdout)
    assert status == "HTTP/1.1 500 INTERNAL SERVER ERROR" and headers["x-ms-run-function-failed"] == "True", done.stdout
    assert json.loads(answer) == {"message": "An unexpected error occurred in scoring script. Check the logs for "
                                             "more info."}


def test_replay_prints_the_answer_and_exits_0(tmp_path):
    # A capture edited by hand (the fix to try), in raw mode: status, the script's headers and the body.
    script = tmp_path / "score.py"
    script.write_text(RAW_ECHO)
    capture = tmp_path / "c.json"
    capture.write_text(json.dumps({"format": "azmlinfsrv-capture/1", "method": "POST", "path": "/score",
                                   "query": "x=1", "headers": [["X-Custom", "c3"]], "body": "hello"}))
    done = replay(str(script), str(capture))
    assert done.returncode == 0, done.stderr.decode()
    status, headers, answer = split_answer(done.stdout)
    assert status == "HTTP/1.1 201 CREATED", done.stdout
    assert headers["X-Seen"] == "yes" and headers["x-ms-run-function-failed"] == "False", headers
    assert float(headers["x-ms-run-fn-exec-ms"]) >= 0
    assert json.loads(answer) == {"method": "POST", "path": "/score", "query": "x=1", "custom": "c3",
                                  "sha": hashlib.sha256(b"hello").hexdigest(), "size": 5}
    # stdout is the answer alone; the log went to stderr.
    assert b"Invoking user's init function" not in done.stdout and "Invoking user's init function" in done.stderr.decode()


def test_replay_of_a_plain_json_body(tmp_path):
    script = tmp_path / "score.py"
    script.write_text(JSON_SCRIPT)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"values": [1, 2, 3]}')
    bad.write_text('{"values": [1, "x"]}')
    done = replay(str(script), str(good))
    assert done.returncode == 0, done.stderr.decode()
    assert split_answer(done.stdout)[2] == b'{"total": 6}\n', done.stdout
    failed = replay(str(script), str(bad))
    assert failed.returncode == 1
    err = failed.stderr.decode()
    assert re.search(r"Encountered Exception: Traceback \(most recent call last\):\n  File \"[^\"]+score\.py\", line 10, "
                     r"in run\n", err), err
    assert "TypeError: unsupported operand type(s) for +: 'int' and 'str'" in err, err


def test_pdb_stops_where_run_raised(tmp_path):
    script = tmp_path / "score.py"
    script.write_text(JSON_SCRIPT)
    bad = tmp_path / "bad.json"
    bad.write_text('{"values": [1, "x"]}')
    done = replay(str(script), str(bad), "--pdb", stdin=b"p values\nq\n")
    assert done.returncode == 1, done.stderr.decode()
    err = done.stderr.decode()
    assert re.search(r"> \S+score\.py\(10\)run\(\)\n-> return \{\"total\": sum\(values\)\}\n\(Pdb\) \[1, 'x'\]\n", err), err
    assert "azmlinfsrv.print" not in err  # pdb writes to the terminal, not through the print hook
    assert split_answer(done.stdout)[0] == "HTTP/1.1 500 INTERNAL SERVER ERROR"


def test_breakpoint_stops_in_a_replay(tmp_path):
    script = tmp_path / "score.py"
    script.write_text("def init():\n    pass\n\n\ndef run(data):\n    x = 41\n    breakpoint()\n    return {'x': x}\n")
    body = tmp_path / "body.json"
    body.write_text("{}")
    done = replay(str(script), str(body), stdin=b"p x\nx = 42\nc\n")
    assert done.returncode == 0, done.stderr.decode()
    assert re.search(r"-> return \{'x': x\}\n\(Pdb\) 41\n", done.stderr.decode()), done.stderr.decode()
    assert split_answer(done.stdout)[2] == b'{"x": 42}\n'


def test_replay_refuses_what_it_cannot_replay(tmp_path):
    script = tmp_path / "score.py"
    script.write_text(JSON_SCRIPT)
    missing = replay(str(script), str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and missing.stdout == b""
    assert f"azmlinfsrv: error: --replay {tmp_path / 'nope.json'}: cannot read the file: No such file or directory." \
        in missing.stderr.decode(), missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "azmlinfsrv-capture/1", "method": "POST", "path": "/score",
                                  "headers": {"a": "b"}}))
    done = replay(str(script), str(broken))
    assert done.returncode == 2
    assert ('this capture file cannot be replayed: the field "headers" must be a list of [name, value] pairs of '
            "strings. Fix the field, or give a plain JSON body instead.") in done.stderr.decode(), done.stderr
    assert "Invoking user's init function" not in done.stderr.decode()  # refused before the script loads
    alone = subprocess.run([require_binary(), "--entry_script", str(script), "--pdb"], capture_output=True,
                           env=base_env(None), timeout=30, stdin=subprocess.DEVNULL)
    assert alone.returncode == 1 and "--pdb stops in pdb where run() raised in a replay" in alone.stderr.decode()
    load_fails = tmp_path / "broken_score.py"
    load_fails.write_text("def init():\n    raise RuntimeError('no model')\n\ndef run(data):\n    return data\n")
    assert replay(str(load_fails), str(broken.parent / "broken.json")).returncode == 2
    body = tmp_path / "body.json"
    body.write_text("{}")
    failed_boot = replay(str(load_fails), str(body))
    assert failed_boot.returncode == 3 and "RuntimeError: no model" in failed_boot.stderr.decode()


def test_timeouts_and_crashes_are_saved(server, tmp_path):
    folder = str(tmp_path / "caps")
    s = server.start("misbehaves.py", args=["--capture", folder], env={"SCORING_TIMEOUT_MS": "400"})

    def plain(body):
        return request(s.port, "POST", "/score", headers={"Content-Type": "text/plain"}, body=body, timeout=20)

    assert plain("sleep:5").status == 500  # the scoring timeout's TimeoutError, in Python
    assert plain("stuck:3").status == 500  # stuck in native code: the I/O thread answers
    s.wait_ready(10)
    deadline = time.monotonic() + 10
    while True:  # the stuck worker is being replaced meanwhile
        try:
            if plain("segv").status == 500:
                break
        except Exception:  # noqa: BLE001
            pass
        assert time.monotonic() < deadline
        time.sleep(0.2)
    saved = [load(p) for p in wait_captures(folder, 3)]
    by_body = {c["body"]: c for c in saved}
    assert by_body["sleep:5"]["failure"] == "timeout", by_body
    assert by_body["sleep:5"]["traceback"].endswith("TimeoutError: Scoring timeout"), by_body["sleep:5"]
    assert by_body["stuck:3"]["failure"] == "timeout", by_body
    assert re.search(r'File "\S+misbehaves\.py", line \d+ in run', by_body["stuck:3"]["traceback"]), by_body["stuck:3"]
    assert by_body["segv"]["failure"] == "crash" and by_body["segv"]["status"] == 500, by_body
    assert re.search(r'File "\S+misbehaves\.py", line \d+ in run', by_body["segv"]["traceback"]), by_body["segv"]
    s.wait_for_log(r"Saved the failed request to \S+" + re.escape(os.path.basename(
        [p for p in captures(folder) if load(p)["body"] == "segv"][0])))


def test_workers_saving_at_once_lose_nothing(server, tmp_path):
    folder = str(tmp_path / "caps")
    s = server.start(RAW_ECHO, args=["--capture", folder, "--worker_count", "2"])
    statuses = []

    def fail_some():
        for _ in range(10):
            statuses.append(request(s.port, "POST", "/score", body=b"fail").status)

    threads = [threading.Thread(target=fail_some) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [500] * 30
    paths = wait_captures(folder, 30)
    assert len(paths) == 30 and all(load(p)["body"] == "fail" for p in paths)
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_capture_folder_that_cannot_be_made_is_refused_at_start(server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    s = server.start(JSON_SCRIPT, args=["--capture", str(blocker / "caps")], expect_ready=False)
    assert s.wait_exit(10) == 1
    assert f"--capture {blocker / 'caps'}: cannot create or write to the folder" in s.stdout(), s.logs()
