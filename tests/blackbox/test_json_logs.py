"""--log_format json (issue 6): every line on stdout is one JSON object; request lines carry their id."""
import json

from bb_http import request

SCRIPT = """
def init():
    print("init says hi")

def run(data):
    print("handling " + data)
    if data == "fail":
        raise ValueError("boom")
    return {"ok": data}
"""


def records(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no output"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}")
    return parsed


def test_every_stdout_line_is_json_with_the_request_id(server):
    s = server.start(SCRIPT, args=["--log_format", "json"])
    for rid, body in (("rid-ok", "x"), ("rid-fail", "fail")):
        request(s.port, "POST", "/score", headers={"x-request-id": rid, "Content-Type": "text/plain"}, body=body)
    s.wait_for_log(r'"POST /score HTTP/1.1\\" 500')
    s.stop()
    recs = records(s.stdout())
    for rec in recs:
        assert set(rec) == {"time", "level", "pid", "logger", "message", "request_id"}, rec
        assert rec["time"].endswith("Z") and rec["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    by_message = {r["message"]: r for r in recs}
    assert by_message["handling x"]["request_id"] == "rid-ok"
    assert by_message["handling fail"]["request_id"] == "rid-fail"
    assert by_message["init says hi"]["request_id"] is None
    failure = [r for r in recs if r["message"].startswith("Encountered Exception")]
    assert failure and failure[0]["request_id"] == "rid-fail" and "ValueError: boom" in failure[0]["message"]
    request_lines = [r for r in recs if r["message"].startswith("POST /score ")]
    assert [r["request_id"] for r in request_lines] == ["rid-ok", "rid-fail"]
    assert any("Server Settings" in r["message"] for r in recs)  # the banner is a record too
    assert all(json.loads(line) for line in s.stderr().splitlines() if line.strip())


def test_text_format_stays_the_default(server):
    s = server.start(SCRIPT)
    assert "Server Settings\n---------------\n" in s.stdout()


def test_a_bad_log_format_is_refused():
    from conftest import run_cli

    code, out, err, _ = run_cli(["--entry_script", "x.py", "--log_format", "xml"])
    assert code == 1 and "invalid choice: 'xml'" in err
    code, out, err, _ = run_cli(["--entry_script", "x.py"], env={"AZMLINFSRV_LOG_FORMAT": "yaml"})
    assert code == 1 and "AZMLINFSRV_LOG_FORMAT='yaml'" in err
