"""Checklist items 1-7, 9-17: health route, routing errors, request ids (docs/behaviour.md 3.1-3.4)."""
import re
import time

import pytest

import bb_http
from bb_http import Conn, request

VERSION_HEADER = "azmlinfsrv/1.5.1"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MSG_404 = ('{"message": "The requested URL was not found on the server. If you entered the URL manually '
           'please check your spelling and try again."}')
MSG_405 = '{"message": "The method is not allowed for the requested URL."}'
MSG_431_RID = '{"message": "x-request-id must not exceed 100 characters"}'
MSG_431_MS = '{"message": "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"}'
ID_HEADERS = ("x-request-id", "x-ms-request-id", "x-ms-client-request-id")


def assert_a_headers(r):
    assert r.one("x-ms-server-version") == VERSION_HEADER, r
    assert r.one("x-request-id"), r
    assert r.one("x-ms-request-id") == r.one("x-request-id"), r


def test_c1_health_get(echo_server):
    r = request(echo_server.port, "GET", "/")
    assert r.status == 200, r
    assert r.body == b"Healthy"
    assert r.one("content-type") == "text/html; charset=utf-8"
    assert r.one("content-length") == "7"
    assert_a_headers(r)
    assert UUID4.match(r.one("x-request-id")), r


def test_c2_health_head(echo_server):
    # Connection: close variant: nothing may follow the header block.
    with Conn(echo_server.port) as c:
        c.send_raw(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response(head=True)
        rest = c.pending_bytes(wait=1.0)
    assert r.status == 200, r
    assert r.one("content-length") == "7", r
    assert r.one("content-type") == "text/html; charset=utf-8"
    assert_a_headers(r)
    assert rest == b"", f"HEAD response carried a body: {rest!r}"
    # keep-alive variant: the next response must start right after the HEAD header block.
    with Conn(echo_server.port) as c:
        r1 = c.request("HEAD", "/")
        assert r1.status == 200 and r1.one("content-length") == "7"
        assert c.pending_bytes(wait=0.3) == b"", "HEAD response carried a body"
        r2 = c.request("GET", "/")
        assert r2.status == 200 and r2.body == b"Healthy", r2


def test_c3_health_options(echo_server):
    r = request(echo_server.port, "OPTIONS", "/")
    assert r.status == 200, r
    assert r.body == b""
    assert r.one("allow") == "GET, HEAD, OPTIONS"


def assert_routing_error(r, status, body):
    assert r.status == status, r
    assert r.body.decode() == body
    assert r.one("content-type") == "application/json"
    assert r.one("x-ms-run-function-failed") == "False"
    for h in ID_HEADERS + ("x-ms-server-version",):
        assert not r.has(h), f"routing error must not carry {h}: {r!r}"


def test_c4_unknown_path_404(echo_server):
    r = request(echo_server.port, "GET", "/nope", headers={"x-request-id": "abc"})
    assert_routing_error(r, 404, MSG_404)


@pytest.mark.parametrize("method,path", [("DELETE", "/"), ("POST", "/"), ("PUT", "/score"),
                                         ("POST", "/swagger.json")])
def test_c5_method_not_allowed_405(echo_server, method, path):
    r = request(echo_server.port, method, path, headers={"x-request-id": "abc"},
                body=b"{}" if method in ("POST", "PUT") else None)
    assert_routing_error(r, 405, MSG_405)


def test_c6_trailing_slash_404(echo_server):
    r = request(echo_server.port, "GET", "/score/")
    assert_routing_error(r, 404, MSG_404)


def test_c7_server_version_header(echo_server, server):
    p = echo_server.port
    responses = [
        request(p, "GET", "/"),
        request(p, "POST", "/score", body="x"),
        request(p, "GET", "/score"),
        request(p, "GET", "/", headers={"x-request-id": "r" * 101}),  # 431 is family A too
        request(p, "OPTIONS", "/score"),
        request(p, "GET", "/swagger.json"),
    ]
    for r in responses:
        assert r.all("x-ms-server-version") == [VERSION_HEADER], r  # exactly once (docs/differences.md)
    # and it equals the shipped package's __version__
    s = server.start("version_info.py")
    r = request(s.port, "POST", "/score", body="x")
    assert r.status == 200, r
    assert r.json() == {"version": "1.5.1"}
    assert r.one("x-ms-server-version") == "azmlinfsrv/" + r.json()["version"]


def test_c9_generated_request_id(echo_server):
    r = request(echo_server.port, "POST", "/score", body="x")
    assert r.status == 200, r
    rid = r.one("x-request-id")
    assert UUID4.match(rid), rid
    assert r.one("x-ms-request-id") == rid
    assert not r.has("x-ms-client-request-id")
    r2 = request(echo_server.port, "POST", "/score", body="x")
    assert r2.one("x-request-id") != rid, "request ids must be unique"


def test_c10_given_request_id(echo_server):
    r = request(echo_server.port, "POST", "/score", headers={"x-request-id": "my-req-1"}, body="x")
    assert r.status == 200, r
    assert r.one("x-request-id") == "my-req-1"
    assert r.one("x-ms-request-id") == "my-req-1"
    assert not r.has("x-ms-client-request-id")
    # header names are case-insensitive
    r = request(echo_server.port, "POST", "/score", headers={"X-Request-ID": "Case-R"}, body="x")
    assert r.one("x-request-id") == "Case-R"


def test_c11_legacy_request_id(echo_server):
    r = request(echo_server.port, "POST", "/score", headers={"x-ms-request-id": "legacy-B-11"}, body="x")
    assert r.status == 200, r
    assert UUID4.match(r.one("x-request-id"))
    assert r.one("x-ms-request-id") == "legacy-B-11"
    assert r.one("x-ms-client-request-id") == "legacy-B-11"
    echo_server.wait_for_log(
        r" W \[\d+\] azmlinfsrv[\w.]* - x-ms-request-id header has been deprecated and will be removed from "
        r"future versions of the server\. Please use x-ms-client-request-id\.$")


def test_c12_client_request_id(echo_server):
    r = request(echo_server.port, "POST", "/score", headers={"x-ms-client-request-id": "client-C"}, body="x")
    assert r.status == 200, r
    assert UUID4.match(r.one("x-request-id"))
    assert r.one("x-ms-request-id") == "client-C"
    assert r.one("x-ms-client-request-id") == "client-C"


G = object()  # "generated"


@pytest.mark.parametrize("R,B,C,exp", [
    (None, None, None, (G, G, None)),
    ("R1", None, None, ("R1", "R1", None)),
    (None, "B1", None, (G, "B1", "B1")),
    (None, None, "C1", (G, "C1", "C1")),
    ("R1", "B1", None, ("R1", "B1", "B1")),
    (None, "B1", "C1", (G, "B1", "C1")),
    ("R1", None, "C1", ("R1", "C1", "C1")),
    ("R1", "B1", "C1", ("R1", "B1", "C1")),
])
def test_c13_request_id_table(echo_server, R, B, C, exp):
    hdrs = []
    for name, val in zip(ID_HEADERS, (R, B, C)):
        if val is not None:
            hdrs.append((name, val))
    r = request(echo_server.port, "POST", "/score", headers=hdrs, body="x")
    assert r.status == 200, r
    got = [r.all(h) for h in ID_HEADERS]
    for name, g, e in zip(ID_HEADERS, got, exp):
        if e is None:
            assert g == [], f"{name} should be absent: {r!r}"
        elif e is G:
            assert len(g) == 1 and UUID4.match(g[0]), f"{name} should be a generated uuid4: {r!r}"
        else:
            assert g == [e], f"{name}: {r!r}"
    if exp[0] is G and exp[1] is G:
        assert got[0] == got[1]


def test_c14_request_id_length_limit(echo_server):
    ok = "a" * 100
    r = request(echo_server.port, "POST", "/score", headers={"x-request-id": ok}, body="x")
    assert r.status == 200, r
    assert r.one("x-request-id") == ok
    r = request(echo_server.port, "POST", "/score", headers={"x-request-id": "a" * 101}, body="x")
    assert r.status == 431, r
    assert r.body.decode() == MSG_431_RID
    assert r.one("content-type") == "application/json"
    for h in ID_HEADERS:
        assert not r.has(h), r


@pytest.mark.parametrize("which", ["x-ms-request-id", "x-ms-client-request-id"])
def test_c15_legacy_id_length_limit(echo_server, which):
    r = request(echo_server.port, "POST", "/score", headers={which: "b" * 101}, body="x")
    assert r.status == 431, r
    assert r.body.decode() == MSG_431_MS
    assert UUID4.match(r.one("x-request-id")), r
    assert not r.has("x-ms-request-id") and not r.has("x-ms-client-request-id"), r
    # with a given x-request-id, that one is echoed
    r = request(echo_server.port, "POST", "/score", headers={"x-request-id": "given-R", which: "b" * 101}, body="x")
    assert r.status == 431, r
    assert r.body.decode() == MSG_431_MS
    assert r.one("x-request-id") == "given-R"
    assert not r.has("x-ms-request-id") and not r.has("x-ms-client-request-id"), r
    # exactly 100 is fine
    r = request(echo_server.port, "POST", "/score", headers={which: "b" * 100}, body="x")
    assert r.status == 200, r


def test_c15_legacy_id_warned_before_the_431(echo_server):
    """The reference logs the deprecation as soon as it sees x-ms-request-id, also when the ids' lengths
    then answer 431."""
    r = request(echo_server.port, "POST", "/score", headers={"x-request-id": "warn-then-431",
                                                            "x-ms-request-id": "b" * 101}, body="x")
    assert r.status == 431, r
    echo_server.wait_for_log(r'"POST /score HTTP/1.1" 431 ')
    lines = echo_server.stdout().splitlines()
    warned = [i for i, line in enumerate(lines) if "x-ms-request-id header has been deprecated" in line]
    refused = [i for i, line in enumerate(lines) if '" 431 ' in line]
    assert warned and refused and warned[-1] < refused[-1], lines[-6:]


def test_c16_health_checks_request_id_length(echo_server):
    r = request(echo_server.port, "GET", "/", headers={"x-request-id": "h" * 101})
    assert r.status == 431, r
    assert r.body.decode() == MSG_431_RID
    for h in ID_HEADERS:
        assert not r.has(h), r
    r = request(echo_server.port, "GET", "/", headers={"x-ms-client-request-id": "h" * 101})
    assert r.status == 431, r
    assert r.body.decode() == MSG_431_MS


def test_c17_empty_request_id(echo_server):
    for path, method in (("/score", "POST"), ("/", "GET")):
        with Conn(echo_server.port) as c:
            c.send_raw(f"{method} {path} HTTP/1.1\r\nHost: x\r\nx-request-id:\r\nContent-Length: 1\r\n\r\nx".encode()
                       if method == "POST" else
                       f"{method} {path} HTTP/1.1\r\nHost: x\r\nx-request-id: \r\n\r\n".encode())
            r = c.read_response()
        assert r.status == 200, r
        assert not r.has("x-request-id"), r
        assert not r.has("x-ms-request-id"), r
        assert not r.has("x-ms-client-request-id"), r
