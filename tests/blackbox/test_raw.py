"""Checklist items 39-42: @rawhttp run() gets a Flask-request-compatible object; streamed AMLResponse
(docs/behaviour.md 4.4, 4.9)."""
import re
import time

import pytest

from bb_http import Conn, request

MSG_SCRIPT_ERR = '{"message": "An unexpected error occurred in scoring script. Check the logs for more info."}'


@pytest.fixture(scope="session")
def raw_server(session_servers):
    """tests/fixtures/raw_request.py (@rawhttp); ?case= selects what run() does."""
    return session_servers.start("raw_request.py")


def describe(srv, method, target, headers=None, body=None):
    hdrs = [("Host", f"127.0.0.1:{srv.port}")] + list(headers or [])
    r = request(srv.port, method, target, headers=hdrs, body=body)
    assert r.status == 200, r
    assert r.one("content-type") == "application/json"
    return r.json()


def test_c40_raw_request_get(raw_server):
    p = raw_server.port
    d = describe(raw_server, "GET", "/score?a=1&b=x&b=y", headers=[("X-Test-Header", "hv")])
    assert d["method"] == "GET"
    assert d["path"] == "/score"
    assert d["full_path"] == "/score?a=1&b=x&b=y"
    assert d["url"] == f"http://127.0.0.1:{p}/score?a=1&b=x&b=y"
    assert d["args"] == {"a": ["1"], "b": ["x", "y"]}  # multi-valued, values are strings
    assert d["arg_a"] == "1"
    assert ["X-Test-Header", "hv"] in d["headers"], d["headers"]  # iteration yields (name, value) pairs
    assert ["Host", f"127.0.0.1:{p}"] in d["headers"], d["headers"]
    assert d["header_get_lower"] == "hv" and d["header_get_upper"] == "hv"  # case-insensitive get
    assert d["header_missing"] == "dflt"
    assert d["get_data"] == "" and d["data"] == ""
    assert d["is_json"] is False and d["json"] is None
    env = d["environ"]
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/score"
    assert env["QUERY_STRING"] == "a=1&b=x&b=y"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(p)
    assert env["SERVER_NAME"]
    assert env["SCRIPT_NAME"] == ""
    assert env["wsgi.url_scheme"] == "http"
    assert "HTTP_X_TEST_HEADER" in d["environ_http"] and "HTTP_HOST" in d["environ_http"], d["environ_http"]
    assert d["environ_test_header"] == "hv"
    if d["is_flask_request"] is not None:  # Flask installed: the reference hands over a flask.Request
        assert d["is_flask_request"] is True


def test_c40_raw_request_post_json(raw_server):
    body = '{"x": [1, 2], "y": "\u00e9"}'
    d = describe(raw_server, "POST", "/score?case=describe",
                 headers=[("Content-Type", "application/json"), ("X-Test-Header", "p")], body=body.encode())
    assert d["method"] == "POST"
    assert d["get_data"].encode("latin-1") == body.encode()
    assert d["get_data_text"] == body
    assert d["data"].encode("latin-1") == body.encode()
    assert d["is_json"] is True
    assert d["json"] == {"x": [1, 2], "y": "\u00e9"}
    assert d["content_type"] == "application/json"
    assert d["environ"]["CONTENT_TYPE"] == "application/json"
    assert d["environ"]["CONTENT_LENGTH"] == str(len(body.encode()))
    assert ["Content-Type", "application/json"] in d["headers"], d["headers"]


@pytest.mark.parametrize("ct,is_json", [("application/json; charset=utf-8", True), ("application/vnd.x+json", True),
                                        ("text/plain", False)])
def test_c40_raw_request_is_json(raw_server, ct, is_json):
    d = describe(raw_server, "POST", "/score", headers=[("Content-Type", ct)], body=b'{"k": 1}')
    assert d["is_json"] is is_json
    assert d["json"] == ({"k": 1} if is_json else None)


def test_c40_raw_request_form_body_kept(raw_server):
    # with rawhttp, get_data() returns the raw body even for a form content type (docs/behaviour.md 4.4)
    d = describe(raw_server, "POST", "/score", headers=[("Content-Type", "application/x-www-form-urlencoded")],
                 body=b"a=1&b=2")
    assert d["get_data"] == "a=1&b=2"


def test_c40_raw_request_binary_body(raw_server):
    body = bytes(range(256))
    d = describe(raw_server, "POST", "/score", headers=[("Content-Type", "application/octet-stream")], body=body)
    assert d["get_data"].encode("latin-1") == body


@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
def test_c41_raw_methods_reach_run(raw_server, method):
    r = request(raw_server.port, method, "/score?case=methods", body=b"" if method == "POST" else None)
    assert r.status == 200, r
    assert r.one("X-Seen-Method") == method, r
    assert r.body == f"seen {method}".encode()


def test_c41_raw_head_reaches_run(raw_server):
    with Conn(raw_server.port) as c:
        r = c.request("HEAD", "/score?case=methods")
        assert r.status == 200, r
        assert r.one("X-Seen-Method") == "HEAD", r  # run() was called
        assert c.pending_bytes(wait=0.3) == b"", "HEAD response carried a body"
        r2 = c.request("GET", "/")  # framing intact
        assert r2.status == 200 and r2.body == b"Healthy", r2


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_c41_raw_unrouted_methods_405(raw_server, method):
    r = request(raw_server.port, method, "/score?case=methods", body=b"x")
    assert r.status == 405, r
    assert not r.has("X-Seen-Method")


def test_c42_raw_invalid_json(raw_server):
    r = request(raw_server.port, "POST", "/score?case=badjson", headers={"Content-Type": "application/json"},
                body=b"{not json")
    assert r.status == 500, r
    assert r.body.decode() == MSG_SCRIPT_ERR
    assert r.one("x-ms-run-function-failed") == "True"


def read_chunks_timed(conn, deadline):
    """Read a chunked body from conn, returning [(payload, arrival monotonic time)]."""
    out = []
    while (data := conn.read_chunk(deadline)) is not None:
        out.append((data, time.monotonic()))
    return out


def read_head(conn, deadline):
    while b"\r\n\r\n" not in conn.buf:
        conn._fill(deadline)
    raw_head, conn.buf = conn.buf.split(b"\r\n\r\n", 1)
    lines = raw_head.decode("latin-1").split("\r\n")
    headers = [(k, v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
    return int(lines[0].split(" ")[1]), headers


def test_c39_streaming(raw_server):
    n, pause = 3, 0.5
    mark = raw_server.mark()
    with Conn(raw_server.port) as c:
        t0 = time.monotonic()
        c.send_raw(Conn.build("GET", f"/score?case=stream&n={n}&pause={pause}"))
        deadline = t0 + 10
        status, headers = read_head(c, deadline)
        t_head = time.monotonic()
        chunks = read_chunks_timed(c, deadline)
    hget = {k.lower(): v for k, v in headers}
    assert status == 200, headers
    assert hget.get("transfer-encoding", "").lower() == "chunked", headers
    assert "content-length" not in hget, headers
    assert hget["content-type"] == "text/plain"
    # each yielded string is exactly one HTTP chunk
    payloads = [p.decode() for p, _ in chunks]
    assert len(payloads) == n, payloads
    for i, p in enumerate(payloads):
        assert re.fullmatch(rf"chunk-{i}:\d+\.\d{{6}};", p), payloads
    # the first chunk arrives long before the generator finishes (it sleeps `pause` between items)
    arrivals = [t - t0 for _, t in chunks]
    assert t_head - t0 < 0.4, f"headers after {t_head - t0:.3f}s"
    assert arrivals[0] < 0.4, f"first chunk after {arrivals[0]:.3f}s: not streamed"
    assert arrivals[-1] >= (n - 1) * pause * 0.9, arrivals
    for a, b in zip(arrivals, arrivals[1:]):
        assert b - a >= pause * 0.7, f"chunks not sent as produced: {arrivals}"
    # x-ms-run-fn-exec-ms covers run() only, not the streaming
    assert float(hget["x-ms-run-fn-exec-ms"]) < 300, headers
    raw_server.wait_for_log(r"^.* I \[\d+\] azmlinfsrv - GET /score\?case=stream&n=3&pause=0\.5 200 \d+\.\d{3}ms N/A$",
                            since=mark)


def test_c39_streaming_keepalive_framing(raw_server):
    # a streamed response on a persistent connection ends cleanly; the next request works
    with Conn(raw_server.port) as c:
        r = c.request("GET", "/score?case=stream&n=4&pause=0")
        assert r.status == 200, r
        assert r.chunks is not None and len(r.chunks) == 4, r
        r2 = c.request("GET", "/score?case=methods")
        assert r2.status == 200 and r2.body == b"seen GET", r2


def closed_so_far(s):
    return request(s.port, "GET", "/score?kind=closed").json()


def test_response_close_called_after_the_answer(server):
    # PEP 3333: the server calls close() of the Response run() returned once the answer is out (gunicorn closes
    # the iterable Werkzeug returns): call_on_close callbacks run, the body's own close() too. The reference's
    # order, observed: the request's access line, then the callback's print, before the next run().
    s = server.start("response_close.py")
    r = request(s.port, "GET", "/score?n=1")
    assert r.status == 200 and r.body == b"body 1", r
    assert closed_so_far(s) == ["1"]
    out = s.stdout()
    access = out.index('"GET /score?n=1 HTTP/1.1" 200 6')
    assert out.index("azmlinfsrv.print - closed 1") > access, out
    with Conn(s.port) as c:  # a streamed body: its close() and the callbacks, once the last chunk is out
        r = c.request("GET", "/score?kind=stream&n=2")
        assert r.status == 200 and r.chunks == [b"a", b"b"], r
    assert closed_so_far(s) == ["1", "body 2", "2"]


def test_response_close_called_once_for_a_streamed_answer_without_body(server):
    """A 204 (or 304, 1xx) sends no body, so its stream is never iterated; the Response is still closed,
    once: its body's close() and each call_on_close callback run one time."""
    s = server.start("response_close.py")
    r = request(s.port, "GET", "/score?kind=stream&status=204&n=5")
    assert r.status == 204 and r.body == b"", r
    assert closed_so_far(s) == ["body 5", "5"]


def test_response_close_called_when_the_body_fails(server):
    s = server.start("response_close.py")
    with Conn(s.port) as c:
        c.send_raw(Conn.build("GET", "/score?kind=stream&n=fail5"))
        got = c.pending_bytes(wait=3)  # up to the cut, mid-body
        assert got.startswith(b"HTTP/1.1 200 OK\r\n") and not got.endswith(b"0\r\n\r\n"), got
    assert closed_so_far(s) == ["body fail5", "fail5"]


def test_response_close_that_raises_is_logged(server):
    s = server.start("response_close.py")
    r = request(s.port, "GET", "/score?kind=raises&n=3")
    assert r.status == 200 and r.body == b"raises 3", r
    m = s.wait_for_log(r" E \[\d+\] azmlinfsrv - AMLResponse\.close\(\) raised after the answer was sent \(the "
                       r"client has it\): a callback registered with call_on_close\(\), or the close\(\) of the body, "
                       r"failed; fix it in the script\.\n((?:.*\n)*?)ZeroDivisionError: division by zero$")
    assert "azureml_inference_server_http/" not in m.group(1), m.group(0)
    assert closed_so_far(s) == []  # Werkzeug stops at the callback that raised, as in the reference
    assert request(s.port, "GET", "/score?n=4").status == 200
    assert closed_so_far(s) == ["4"]
