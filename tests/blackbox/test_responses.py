"""Checklist items 30-38 and the AMLResponse quirks: what a client gets back when run() returns an
AMLResponse / flask.Response, and the scoring timeout (docs/behaviour.md 2.4, 3.5, 4.6; docs/differences.md)."""
import re
import time

import pytest

from bb_http import request

EXEC_MS = re.compile(r"^\d+\.\d{3}$")
MSG_SCRIPT_ERR = '{"message": "An unexpected error occurred in scoring script. Check the logs for more info."}'
MSG_INTERNAL = '{"message": "An unexpected internal error occurred. Check the logs for more info."}'
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe"  # what tests/fixtures/responses.py returns


def post(srv, case, **kw):
    return request(srv.port, "POST", "/score", body=case, **kw)


def test_c30_scoring_timeout(responses_server):
    t0 = time.monotonic()
    r = post(responses_server, "sleep:2")
    elapsed = time.monotonic() - t0
    assert r.status == 500, r
    assert r.body == b'{"message": "Scoring timeout after 500 ms"}'
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "True"
    assert not r.has("x-ms-run-fn-exec-ms"), r
    assert 0.4 <= elapsed < 1.5, f"timeout answered after {elapsed:.3f}s, expected about 0.5s"
    responses_server.wait_for_log(r" E \[\d+\] azmlinfsrv[\w.]* - Encountered Exception: ")
    # the worker keeps serving, and a fast run() is not affected
    r = post(responses_server, "sleep:0.01")
    assert r.status == 200 and r.json() == {"slept": 0.01}, r


def test_c30_user_timeout_error_reported_as_timeout(responses_server):
    # quirk 14: a TimeoutError raised by the script looks exactly like a scoring timeout
    t0 = time.monotonic()
    r = post(responses_server, "raise_timeout")
    assert time.monotonic() - t0 < 0.4
    assert r.status == 500, r
    assert r.body == b'{"message": "Scoring timeout after 500 ms"}'
    assert r.one("x-ms-run-function-failed") == "True"


def test_c30_timeout_swallowed_by_script(responses_server):
    # the TimeoutError is raised inside run(); a script that catches it answers normally
    r = post(responses_server, "swallow:2")
    assert r.status == 200, r
    assert r.json() == {"swallowed": True}


def test_c30_timeout_counts_from_each_runs_own_start(responses_server):
    # One interval timer serves many run() calls (no system call per request): it was armed for an
    # earlier call, so it fires inside a later one, which must get its own full SCORING_TIMEOUT_MS.
    assert post(responses_server, "sleep:0.01").status == 200
    time.sleep(0.3)
    r = post(responses_server, "sleep:0.4")  # spans the first call's deadline, ends before its own
    assert r.status == 200 and r.json() == {"slept": 0.4}, r
    for _ in range(3):  # the re-armed timer still stops a call at its own deadline, every time
        time.sleep(0.2)
        t0 = time.monotonic()
        r = post(responses_server, "sleep:2")
        elapsed = time.monotonic() - t0
        assert r.status == 500 and r.body == b'{"message": "Scoring timeout after 500 ms"}', r
        assert 0.45 <= elapsed < 1.2, f"timeout answered after {elapsed:.3f}s, expected about 0.5s"


def test_c30_scripts_own_alarm_and_the_scoring_timeout_leave_each_other_alone(responses_server):
    r = post(responses_server, "own_alarm")
    assert r.status == 200 and r.json() == {"own_alarm_fired": 1}, r
    since = responses_server.mark()
    t0 = time.monotonic()
    r = post(responses_server, "sleep:2")
    elapsed = time.monotonic() - t0
    assert r.status == 500 and r.body == b'{"message": "Scoring timeout after 500 ms"}', r
    assert 0.45 <= elapsed < 1.2, f"timeout answered after {elapsed:.3f}s, expected about 0.5s"
    # by the TimeoutError inside run(), not by the stuck-in-native-code rule that replaces the worker
    responses_server.wait_for_log(r"Encountered Exception: .*\n(.*\n)*TimeoutError: Scoring timeout", since=since)
    assert "stuck in native code" not in responses_server.stdout()[since:]


def test_c31_amlresponse_text(responses_server):
    r = post(responses_server, "c31")
    assert r.status == 444, r
    assert r.body == b"test"
    ct = r.one("content-type")
    assert "json" not in ct, ct
    assert ct == "text/html; charset=utf-8"
    assert r.one("x-ms-run-function-failed") == "False"
    assert EXEC_MS.match(r.one("x-ms-run-fn-exec-ms")), r


def test_c32_amlresponse_json_str_5xx(responses_server):
    r = post(responses_server, "c32")
    assert r.status == 555, r
    assert r.body == b'"test"'
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "True"  # forced for status >= 500
    assert EXEC_MS.match(r.one("x-ms-run-fn-exec-ms")), r


def test_c33_amlresponse_none(responses_server):
    r = post(responses_server, "c33")
    assert r.status == 333, r
    assert r.body == b"{}"
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "False"


def test_c34_amlresponse_headers_split(responses_server):
    r = post(responses_server, "c34")
    assert r.status == 555, r
    assert r.body == b"{}"
    assert r.one("a") == "A"
    assert r.all("b") == ["A", "B", "C"], r  # three separate header lines
    # JSON mode (message None): the server's application/json comes first; the user's lower-case
    # content-type is added after it (docs/behaviour.md 4.6), never replacing it
    assert r.all("content-type")[0] == "application/json", r
    assert r.one("x-ms-run-function-failed") == "True", r  # user's "Z" replaced, one header


def test_c34_comma_split_quirk(responses_server):
    r = post(responses_server, "split")
    assert r.status == 200, r
    assert r.all("X-A") == ["1", "2"], r
    assert r.all("Access-Control-Allow-Methods") == ["GET", "POST"], r


def test_c34_json_mode_user_content_type_duplicated(responses_server):
    r = post(responses_server, "json_ct")
    assert r.status == 200, r
    assert r.body == b'{"a": 1}'
    assert r.all("content-type") == ["application/json", "text/plain"], r


def test_c34_non_str_header_value_is_script_error(responses_server):
    # .split on an int fails inside run(): a scoring-script error
    r = post(responses_server, "int_header")
    assert r.status == 500, r
    assert r.body.decode() == MSG_SCRIPT_ERR
    assert r.one("x-ms-run-function-failed") == "True"


def test_c35_amlresponse_binary(responses_server):
    r = post(responses_server, "c35")
    assert r.status == 200, r
    assert r.body == PNG
    assert r.all("content-type") == ["image/png"], r
    assert r.one("content-length") == str(len(PNG))
    assert r.one("x-ms-run-function-failed") == "False"


def test_c36_flask_response_passthrough(responses_server):
    r = post(responses_server, "c36")
    assert r.status == 201, r
    assert r.reason == "CREATED", r  # Flask-produced statuses use upper-case phrases (docs/behaviour.md 3.2)
    assert r.body == b"x"
    assert r.one("content-type") == "text/plain; charset=utf-8"
    assert not r.has("x-ms-run-function-failed"), r
    assert EXEC_MS.match(r.one("x-ms-run-fn-exec-ms")), r
    responses_server.wait_for_log(r" I \[\d+\] azmlinfsrv[\w.]* - run\(\) output is HTTP Response$")


def test_c37_response_5xx_marks_failed(responses_server):
    r = post(responses_server, "c37")
    assert r.status == 503, r
    assert r.body == b"down"
    assert r.all("x-ms-run-function-failed") == ["True"], r


def test_c37_run_function_failed_flag_below_500(responses_server):
    r = post(responses_server, "failed_flag")
    assert r.status == 200, r
    assert r.all("x-ms-run-function-failed") == ["True"], r


def test_c38_user_request_id_replaced(responses_server):
    r = post(responses_server, "c38", headers={"x-request-id": "the-real-id"})
    assert r.status == 200, r
    assert r.body == b"mine"
    assert r.all("x-request-id") == ["the-real-id"], r
    # docs/differences.md: x-ms-server-version exactly once, even when the script set one
    assert len(r.all("x-ms-server-version")) == 1, r
    r = post(responses_server, "c38")
    assert r.all("x-request-id") != ["mine"] and len(r.all("x-request-id")) == 1, r


def test_quirk3_amlresponse_dict_sends_keys(responses_server):
    mark = responses_server.mark()
    r = post(responses_server, "dict_body")
    assert r.status == 200, r
    assert r.body == b"ab"
    # docs/differences.md: a WARNING suggests json_str=True
    m = responses_server.wait_for_log(r"^.* W \[\d+\] azmlinfsrv[\w.]* - .*json_str=True.*$", since=mark)
    assert "json_str=True" in m.group(0)


def test_amlresponse_list_body(responses_server):
    r = post(responses_server, "list_body")
    assert r.status == 200, r
    assert r.body == b"xyz"


def test_amlresponse_custom_status_text(responses_server):
    r = post(responses_server, "custom_status")
    assert r.status == 299, r
    assert r.reason == "CUSTOM", r
    assert r.body == b"c"


@pytest.mark.parametrize("case,type_name", [("ndarray", "ndarray"), ("bytes", "bytes")])
def test_c28_unserialisable_logs_type_name(responses_server, case, type_name):
    mark = responses_server.mark()
    r = post(responses_server, case)
    assert r.status == 500, r
    assert r.body.decode() == MSG_INTERNAL
    assert r.one("x-ms-run-function-failed") == "False"
    # docs/differences.md: the log names the Python type
    responses_server.wait_for_log(rf"^.* E \[\d+\] azmlinfsrv[\w.]* - .*\b{type_name}\b.*$", since=mark)


@pytest.mark.parametrize("case,where", [
    ("set_in_dict", r"run\(\) returned a dict whose value at labels is a set, which json\.dumps cannot encode\. "
                    r"Convert it with list\(\.\.\.\)\."),
    ("array_deep", r"run\(\) returned a dict whose value at a\[1\]\.b is a numpy\.ndarray, which json\.dumps cannot "
                   r"encode\. Convert it with \.tolist\(\)\."),
])
def test_c28_unserialisable_names_the_path(responses_server, case, where):
    """Issue 13 (10): the log names the part that cannot be encoded, not the container around it."""
    mark = responses_server.mark()
    r = post(responses_server, case)
    assert r.status == 500 and r.body.decode() == MSG_INTERNAL, r
    responses_server.wait_for_log(rf"^.* E \[\d+\] azmlinfsrv[\w.]* - {where}", since=mark)


def test_amlresponse_non_iterable_body(responses_server):
    # The reference fails while sending (gunicorn's HTML 500). docs/differences.md: errors the server itself
    # produces are JSON {"message": ...} with the right status; the worker keeps serving.
    r = post(responses_server, "int_body")
    assert r.status == 500, r
    assert r.one("content-type") == "application/json", r
    assert "message" in r.json(), r
    r = post(responses_server, "c33")
    assert r.status == 333, r


def test_streamed_body_failing_before_first_chunk(responses_server):
    # The reference (gunicorn) sends the status line only with the first body bytes, so a generator that
    # raises before yielding anything gives a 500 (HTML there; JSON here per docs/differences.md).
    r = post(responses_server, "gen_fail:0")
    assert r.status == 500, r
    assert r.one("content-type") == "application/json", r
    responses_server.wait_for_log(r"^RuntimeError: generator failed$")
    assert post(responses_server, "c33").status == 333


def test_streamed_body_failing_midway_cuts_response(responses_server):
    # headers already sent: the connection is cut, the chunked body never gets its terminating chunk
    from bb_http import Conn, ConnectionClosed
    with Conn(responses_server.port) as c:
        c.send_raw(Conn.build("POST", "/score", body="gen_fail:2"))
        with pytest.raises(ConnectionClosed):
            c.read_response(timeout=5)
    assert post(responses_server, "c33").status == 333  # the worker keeps serving
