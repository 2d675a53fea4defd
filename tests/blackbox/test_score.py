"""Checklist items 19-29: what run() receives and how its result is sent (docs/behaviour.md 3.5, 4.4, 4.5)."""
import json
import math
import re

import pytest

from bb_http import Conn, request

EXEC_MS = re.compile(r"^\d+\.\d{3}$")
MSG_SCRIPT_ERR = '{"message": "An unexpected error occurred in scoring script. Check the logs for more info."}'
MSG_INTERNAL = '{"message": "An unexpected internal error occurred. Check the logs for more info."}'


def received(r):
    assert r.status == 200, r
    j = r.json()
    assert j["type"] == "str", j
    return j["received"]


def test_c19_json_body_passed_as_string(echo_server):
    r = request(echo_server.port, "POST", "/score", headers={"Content-Type": "application/json"}, body=b'{"a":1}')
    assert received(r) == '{"a":1}'
    # byte-for-byte: whitespace and key order kept, no re-serialisation
    body = '{ "b" :[1, 2 ],"a":  "\\u00e9",\n"z":1.50}'
    r = request(echo_server.port, "POST", "/score", headers={"Content-Type": "application/json"}, body=body)
    assert received(r) == body


def test_c20_plain_body_no_validation(echo_server):
    r = request(echo_server.port, "POST", "/score", headers={"Content-Type": "text/plain"}, body=b"hello")
    assert received(r) == "hello"
    r = request(echo_server.port, "POST", "/score", body=b"hello")  # no content-type
    assert received(r) == "hello"
    r = request(echo_server.port, "POST", "/score", body="h\u00e9llo \u2603".encode())
    assert received(r) == "h\u00e9llo \u2603"
    r = request(echo_server.port, "POST", "/score", body=b"")
    assert received(r) == ""
    # POST ignores the query string
    r = request(echo_server.port, "POST", "/score?a=1", body=b"q")
    assert received(r) == "q"


def test_c22_non_utf8_body_400(echo_server):
    r = request(echo_server.port, "POST", "/score", body=b"\xff")
    assert r.status == 400, r
    assert r.body.decode() == ('{"message": "Input cannot be decoded as UTF-8: \'utf-8\' codec can\'t decode byte 0xff '
                               'in position 0: invalid start byte"}')
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "False"
    assert not r.has("x-ms-run-fn-exec-ms")


def test_c23_get_query_to_json(echo_server):
    r = request(echo_server.port, "GET", "/score?a=1&b=x&b=y&d=null")
    assert received(r) == '{"a": 1, "b": ["x", "y"], "d": null}'
    r = request(echo_server.port, "GET", "/score")
    assert received(r) == "{}"
    r = request(echo_server.port, "GET",
                '/score?a=1&b=x&b=y&c=[1,2]&d=null&e=1.5&f={"k":true}&g=&h=true'.replace('"', "%22"))
    assert received(r) == '{"a": 1, "b": ["x", "y"], "c": [1, 2], "d": null, "e": 1.5, "f": {"k": true}, "g": "", "h": true}'


def test_c24_options_score(echo_server):
    r = request(echo_server.port, "OPTIONS", "/score")
    assert r.status == 200, r
    assert r.body == b""
    assert r.one("x-ms-run-function-failed") == "False"
    assert not r.has("x-ms-run-fn-exec-ms")


def test_c25_head_score_405(echo_server):
    with Conn(echo_server.port) as c:
        r = c.request("HEAD", "/score")
        assert r.status == 405, r
        assert r.one("content-length") == "33"
        assert c.pending_bytes(wait=0.3) == b"", "HEAD response carried a body"
        r2 = c.request("GET", "/")  # connection still usable, framing intact
        assert r2.status == 200 and r2.body == b"Healthy"


def test_c26_json_output(returns_server):
    r = request(returns_server.port, "POST", "/score", body='{"a": 1}')
    assert r.status == 200, r
    assert r.body == b'{"a": 1}'
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "False"
    assert EXEC_MS.match(r.one("x-ms-run-fn-exec-ms")), r


@pytest.mark.parametrize("expr,expected", [
    ("None", "{}"),
    ("'hello'", '"hello"'),
    ("(1,2)", "[1, 2]"),
    ("{1: 'a'}", '{"1": "a"}'),
    ("{'k': '\u00e9'}", '{"k": "\\u00e9"}'),
    ("float('nan')", "NaN"),
    # more json.dumps equivalence (the native encoder must match it byte for byte)
    ("42", "42"),
    ("-0.0", "-0.0"),
    ("1.5", "1.5"),
    ("0.1", "0.1"),
    ("1e100", "1e+100"),
    ("1e-7", "1e-07"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),
    ("inf", "Infinity"),
    ("-inf", "-Infinity"),
    ("True", "true"),
    ("[None, False, {}, [], '']", '[null, false, {}, [], ""]'),
    ("{'a': {'b': [1, 2.5, 'c']}}", '{"a": {"b": [1, 2.5, "c"]}}'),
    ("'\\U0001F600'", '"\\ud83d\\ude00"'),
    ("'\\n\\t\\x01\"\\\\/'", '"\\n\\t\\u0001\\"\\\\/"'),
    ("{True: 1, None: 2, 1.5: 3}", '{"true": 1, "null": 2, "1.5": 3}'),
    ("np.float64(1.5)", "1.5"),
])
def test_c27_serialisation(returns_server, expr, expected):
    r = request(returns_server.port, "POST", "/score", body=expr)
    assert r.status == 200, r
    assert r.body.decode() == expected
    # sanity: the expectation is what Python's json.dumps produces
    if "np." not in expr and expr != "None":
        ns = {"math": math, "nan": float("nan"), "inf": float("inf")}
        v = eval(expr, ns)
        assert json.dumps(v) == expected
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "False"


@pytest.mark.parametrize("expr", ["b'abc'", "np.array([1, 2])", "np.int64(3)", "(x for x in [1])", "{1, 2}",
                                  "object()"])
def test_c28_not_serialisable(returns_server, expr):
    r = request(returns_server.port, "POST", "/score", body=expr)
    assert r.status == 500, r
    assert r.body.decode() == MSG_INTERNAL
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "False"
    assert not r.has("x-ms-run-fn-exec-ms")


def test_c29_run_raises(server):
    s = server.start("raises.py")
    r = request(s.port, "POST", "/score", body="x")
    assert r.status == 500, r
    assert r.body.decode() == MSG_SCRIPT_ERR
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "True"
    assert not r.has("x-ms-run-fn-exec-ms")
    assert b"boom-from-run-7f3a" not in r.body and b"Traceback" not in r.body
    m = s.wait_for_log(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} E \[\d+\] azmlinfsrv[\w.]* - Encountered Exception: "
                       r"Traceback \(most recent call last\):$")
    tail = s.stdout()[m.end():]
    assert f'File "{s.script}", line 7, in run' in tail, s.logs()
    assert "ValueError: boom-from-run-7f3a" in tail, s.logs()
    # the server keeps serving
    r = request(s.port, "GET", "/")
    assert r.status == 200
