"""docs/debugging.md: the example it shows is the file, and every server output it shows is what the
server prints for the script shown (time stamps, pids, paths and ports aside)."""
import json
import os
import re
import socket
import subprocess

import pytest

from bb_http import request
from conftest import REPO, binary_path

PAGE = os.path.join(REPO, "docs", "debugging.md")
EXAMPLE = os.path.join(REPO, "docs", "examples", "sum_values.py")
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([DIWEC]) \[\d+\] ")


@pytest.fixture(scope="module")
def page():
    with open(PAGE) as f:
        return f.read()


def as_shown(out, path=None, shown_path=None, port=None, shown_port=None):
    """The server's output as the page shows it: "LEVEL logger - message", without time and pid."""
    text = "\n".join(RECORD.sub(r"\1 ", line) for line in out.splitlines())
    if path:
        text = text.replace(path, shown_path)
    if port:
        text = text.replace(str(port), str(shown_port))
    return text


def assert_shown(page, line):
    assert line in page, f"docs/debugging.md does not show {line!r}"


def test_example_shown_verbatim(page):
    with open(EXAMPLE) as f:
        src = f.read()
    assert "](examples/sum_values.py)" in page
    assert f"```python\n{src}```" in page


def test_run_raises(server, page):
    s = server.start(EXAMPLE)
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body='{"values": [1, 2]}')
    assert r.status == 500 and r.get("x-ms-run-function-failed") == "True", r
    assert_shown(page, r.text)
    s.wait_for_log(r"^TypeError: string indices")
    out = as_shown(s.stdout(), s.script, "/path/to/sum_values.py")
    block = re.search(r"^E azmlinfsrv - Encountered Exception: Traceback \(most recent call last\):\n(?:.+\n)+?TypeError.*$",
                      out, re.M)
    assert block, out
    assert_shown(page, block.group(0))


def shown_json(body, path, shown_path):
    return json.dumps(json.loads(body.replace(path, shown_path)), indent=2)


def test_dev_answer(server, page):
    s = server.start(EXAMPLE, args=["--dev"])
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body='{"values": [1, 2]}')
    assert r.status == 500 and r.get("x-ms-run-function-failed") == "True", r
    assert_shown(page, f"```json\n{shown_json(r.text, s.script, '/path/to/sum_values.py')}\n```")


LOAD_FAILURE = """def init():
    global model
    model = load("model.pkl")


def run(data):
    return model.predict(data)
"""


def test_load_failure_answer(server, page):
    assert f"```python\n{LOAD_FAILURE}```" in page
    s = server.start(LOAD_FAILURE, args=["--reload"])
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body="{}")
    assert r.status == 503, r
    assert_shown(page, f"```json\n{shown_json(r.text, s.script, '/path/to/score.py')}\n```")
    line = [ln for ln in as_shown(s.stdout()).splitlines() if "keep serving although" in ln]
    assert len(line) == 1, s.stdout()
    assert_shown(page, line[0])


def test_load_failures(server, page):
    s = server.start("def init():\n    pass\n\n\ndef predict(data):\n    return data\n", expect_ready=False)
    assert s.wait_exit(10) == 3
    out = as_shown(s.stdout(), s.script, "/path/to/score.py")
    lines = [ln for ln in out.splitlines() if "does not have a run()" in ln or "defines predict()" in ln]
    assert len(lines) == 2, out
    assert_shown(page, "\n  ".join(lines))
    s = server.start("def init():\n    pass\n\n\ndef run(data, model_name):\n    return data\n")
    warning = [ln for ln in as_shown(s.stdout()).splitlines() if "beyond its input" in ln]
    assert len(warning) == 1, s.stdout()
    assert_shown(page, warning[0])


def test_scoring_timeout(server, page):
    s = server.start("import time\n\ndef init():\n    pass\n\ndef run(data):\n    time.sleep(2)\n",
                     env={"SCORING_TIMEOUT_MS": "300"})
    assert request(s.port, "POST", "/score", body=b"x").status == 500
    s.wait_for_log("raise SCORING_TIMEOUT_MS")
    line = [ln for ln in as_shown(s.stdout()).splitlines() if "raise SCORING_TIMEOUT_MS" in ln]
    assert_shown(page, line[0])


def test_slow_init_and_thread_lines_are_the_servers(page):
    # The servers' own tests print these (test_dev_loop.py); the page shows them with pid 4242.
    assert_shown(page, "I azmlinfsrv.user_script - init() still running after 10 s (pid 4242)")
    assert_shown(page, "E azmlinfsrv - Exception in thread loader (pid 4242):")


def test_no_debugger_listening(server, page):
    pytest.importorskip("debugpy", reason="python3-debugpy is not installed (.ci/install-deps installs it)")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    s = server.start("def init():\n    pass\n\ndef run(data):\n    return data\n",
                     env={"AZUREML_DEBUG_PORT": str(port)}, expect_ready=False)
    assert s.wait_exit(20) == 3
    line = [ln for ln in as_shown(s.stdout(), port=port, shown_port=5678).splitlines() if "no debugger listens" in ln]
    assert len(line) == 1, s.stdout()
    assert_shown(page, line[0])


def test_capture_and_replay(server, page, tmp_path):
    folder = tmp_path / "captures"
    s = server.start(EXAMPLE, args=["--dev", "--capture", str(folder)])
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body='{"values": [1, 2]}')
    assert r.status == 500
    m = s.wait_for_log(r"^.* E \[\d+\] azmlinfsrv - Saved the failed request to .*$")
    name = next(p for p in os.listdir(folder) if p != "latest.json")
    shown = as_shown(m.group(0), s.script, "/path/to/sum_values.py").replace(str(folder), "/path/to/captures")
    shown = shown.replace(name, "20261203T164512.123Z-5d7c0b5e.json")
    assert_shown(page, shown)
    done = subprocess.run([binary_path(), "--entry_script", EXAMPLE, "--replay", str(folder / "latest.json"), "--pdb"],
                          input=b"p data\nq\n", capture_output=True, timeout=60)
    assert done.returncode == 1, done.stderr
    pdb_lines = done.stderr.decode().replace(EXAMPLE, "/path/to/sum_values.py")
    # What a terminal shows: each command typed after its prompt (the test's stdin is not echoed).
    transcript = pdb_lines[pdb_lines.index("> /path/to/sum_values.py"):]
    parts = transcript.split("(Pdb) ")
    typed = iter(["p data", "q"])
    shown = parts[0] + "".join(f"(Pdb) {next(typed)}\n{part}" for part in parts[1:3])
    assert_shown(page, "```\n" + shown.rstrip("\n") + "\n```")
    assert_shown(page, "```\n" + done.stdout.decode().replace("\r\n", "\n").rstrip("\n") + "\n```")
