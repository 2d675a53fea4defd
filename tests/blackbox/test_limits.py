"""Checklist item 80 and docs/behaviour.md 3.7 with docs/differences.md: request size limits, chunked request bodies.

Reference: 20 MB bodies accepted, gunicorn's limits (request line 4094, header field 8190, 100 fields) give
HTML errors. Ours: same limits, JSON {"message": ...} errors with Connection: close; a body over 100 MiB
gets a 413 before it is read."""
import json

import pytest

from bb_http import Conn, request


@pytest.fixture(scope="session")
def limits_server(responses_server):
    return responses_server  # body "len:<x>" -> {"len": len(x)}


def assert_json_error_and_close(c, r, status):
    assert r.status == status, r
    assert r.one("content-type") == "application/json", r
    assert isinstance(json.loads(r.body)["message"], str), r
    assert "close" in ",".join(r.all("connection")).lower(), r
    assert c.peer_closed(timeout=3.0), "server must close the connection after a limit error"


def test_c80_20mb_body_accepted(limits_server):
    payload = "x" * (20 * 1000 * 1000)
    r = request(limits_server.port, "POST", "/score", headers={"Content-Type": "text/plain"},
                body=("len:" + payload).encode(), timeout=30)
    assert r.status == 200, r
    assert r.json() == {"len": len(payload)}


def test_c80_body_over_100mib_413(limits_server):
    with Conn(limits_server.port) as c:
        c.send_raw(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: %d\r\n\r\n" % (100 * 1024 * 1024 + 1))
        c.send_raw(b"len:" + b"y" * 1000)  # the body is not read: the answer comes before it
        r = c.read_response(timeout=5)
        assert_json_error_and_close(c, r, 413)
    # exactly 100 MiB is allowed (decided from Content-Length)
    with Conn(limits_server.port) as c:
        c.send_raw(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (100 * 1024 * 1024))
        assert c.pending_bytes(wait=0.5) == b"", "a 100 MiB Content-Length must not be refused"


def test_c80_request_line_too_long(limits_server):
    with Conn(limits_server.port) as c:
        r = c.request("GET", "/score?q=" + "a" * 5000)
        assert_json_error_and_close(c, r, 400)
    # a request line under the limit is fine
    r = request(limits_server.port, "GET", "/score?len=" + "a" * 3900)
    assert r.status == 200, r


def test_c80_header_field_too_long(limits_server):
    with Conn(limits_server.port) as c:
        r = c.request("GET", "/", headers={"X-Big": "b" * 9000})
        assert_json_error_and_close(c, r, 431)
    r = request(limits_server.port, "GET", "/", headers={"X-Big": "b" * 8000})
    assert r.status == 200, r


def test_c80_too_many_header_fields(limits_server):
    with Conn(limits_server.port) as c:
        r = c.request("GET", "/", headers=[(f"X-H{i}", "v") for i in range(110)])
        assert_json_error_and_close(c, r, 431)
    r = request(limits_server.port, "GET", "/", headers=[(f"X-H{i}", "v") for i in range(90)])
    assert r.status == 200, r


def test_c80_server_still_serves_after_limit_errors(limits_server):
    r = request(limits_server.port, "POST", "/score", body=b"len:abc")
    assert r.status == 200 and r.json() == {"len": 3}, r


def test_chunked_request_body(limits_server):
    # docs/behaviour.md 3.7: chunked request bodies reach run() de-chunked
    with Conn(limits_server.port) as c:
        c.send_raw(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\nlen:\r\n5\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    assert r.json() == {"len": 8}


def test_http10_request(limits_server):
    with Conn(limits_server.port) as c:
        r = c.request("POST", "/score", body=b"len:ab", version="HTTP/1.0")
        assert r.status == 200 and r.json() == {"len": 2}, r
        assert c.peer_closed(timeout=2.0)
