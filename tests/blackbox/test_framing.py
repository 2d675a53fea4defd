"""Issue 12: how request and response bodies are framed. Chunked uploads reach a @rawhttp run() whole and
its request shows only the framing headers the client sent; a streamed answer is chunked even when
empty; 1xx, 204 and 304 answers carry no body; the access log counts the body bytes sent; what run()
puts in the status line and the headers cannot break the head; HTTP/1.0 with Transfer-Encoding ends
the connection; header names with underscores are dropped. The reference's observed answers are quoted
where ours matches them (docs/behaviour.md 3.7, 4.9, 6.3; docs/differences.md)."""
import json
import re
import time

import pytest

from bb_http import Conn

INTERNAL = {"message": "An unexpected internal error occurred. Check the logs for more info."}


# Shared servers (conftest's session factory stops them); each test reads the log after its own mark.
@pytest.fixture(scope="module")
def body_srv(session_servers):
    return session_servers.start("raw_body.py")


@pytest.fixture(scope="module")
def heads_srv(session_servers):
    return session_servers.start("script_heads.py")


def chunked(body, size=3):
    """body as a chunked transfer coding, `size` bytes a chunk."""
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def send_chunked(srv, target, body, headers=(), version="HTTP/1.1"):
    head = [f"POST {target} {version}", "Host: 127.0.0.1", "Transfer-Encoding: chunked"] + [f"{k}: {v}" for k, v in headers]
    with Conn(srv.port) as c:
        c.send_raw(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + chunked(body))
        r = c.read_response()
        while r.status == 100:  # the answer to Expect: 100-continue
            r = c.read_response()
        assert r.status == 200, r
        return r.json()


def header_names(d):
    return [k.lower() for k, _ in d["headers"]]


# ---- item 1: a chunked body reaches run() whole --------------------------------------------------------

def test_chunked_body_is_read_by_get_data_data_and_stream(body_srv):
    d = send_chunked(body_srv, "/score?read=data", b'{"a": [1, 2, 3]}', [("Content-Type", "application/json")])
    assert d["data"] == '{"a": [1, 2, 3]}' and d["data_property"] == d["data"], d
    assert send_chunked(body_srv, "/score?read=stream", b"hello chunked world")["stream"] == "hello chunked world"


def test_chunked_json_body_is_request_json(body_srv):
    # curl -X POST -T - -H 'Content-Type: application/json' sends this, with Expect: 100-continue
    d = send_chunked(body_srv, "/score?read=json", b'{"a": 1}',
                     [("Content-Type", "application/json"), ("Expect", "100-continue")])
    assert d["json"] == {"a": 1}, d


def test_chunked_form_and_multipart_uploads_are_parsed(body_srv):
    d = send_chunked(body_srv, "/score?read=form", b"a=1&b=2&a=3",
                     [("Content-Type", "application/x-www-form-urlencoded")])
    assert d["form"] == {"a": ["1", "3"], "b": ["2"]}, d
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"img.png\"\r\n"
            f"Content-Type: image/png\r\n\r\nPNGDATA\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"x\"\r\n\r\n1\r\n--{boundary}--\r\n").encode()
    d = send_chunked(body_srv, "/score?read=files", body, [("Content-Type", f"multipart/form-data; boundary={boundary}")])
    assert d["files"] == {"image": ["img.png", "PNGDATA"]} and d["form"] == {"x": ["1"]}, d


# ---- item 7: request.headers and the environ show the framing the client sent ---------------------------

def test_no_content_length_that_the_client_did_not_send(body_srv):
    # The reference (gunicorn's environ): a GET has no CONTENT_LENGTH; request.content_length is None.
    with Conn(body_srv.port) as c:
        r = c.request("GET", "/score?read=data")
    d = r.json()
    assert "content-length" not in header_names(d) and d["environ_content_length"] is None, d
    assert d["content_length"] is None and d["data"] == "", d
    # A chunked upload shows its Transfer-Encoding, and no Content-Length beside it.
    d = send_chunked(body_srv, "/score?read=data", b"abc")
    assert "transfer-encoding" in header_names(d) and "content-length" not in header_names(d), d
    assert d["environ_content_length"] is None and d["content_length"] is None, d
    # A Content-Length the client sent is shown as sent.
    with Conn(body_srv.port) as c:
        d = c.request("POST", "/score?read=data", body=b"abcd").json()
    assert ["Content-Length", "4"] in d["headers"] and d["content_length"] == 4 and d["data"] == "abcd", d


# ---- item 9: a stream that yields nothing is still a chunked answer -------------------------------------

def test_empty_stream_is_answered_chunked(heads_srv):
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        c.send_raw(b"GET /score?case=empty_stream HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        # the reference: Transfer-Encoding: chunked, no Content-Length, only the last chunk
        assert r.status == 200 and r.one("transfer-encoding") == "chunked" and not r.has("content-length"), r
        assert r.chunks == [] and r.body == b"", r
        assert c.request("GET", "/score?case=empty").status == 200  # the connection is still in step
    heads_srv.wait_for_log(r"azmlinfsrv - GET /score\?case=empty_stream 200 \d+\.\d{3}ms N/A$", since=mark)
    heads_srv.wait_for_log(r'"GET /score\?case=empty_stream HTTP/1.1" 200 0 "-" "-"$', since=mark)


# ---- item 10: the access log counts the body bytes sent -------------------------------------------------

def access_count(srv, target_re, since, method="GET"):
    m = srv.wait_for_log(rf'gunicorn\.access - .* "{method} {target_re} HTTP/1\.[01]" \d+ (\S+) ', since=since)
    return m.group(1)


def test_access_log_byte_counts(heads_srv):
    # The reference (gunicorn's resp.sent): 0 for HEAD, OPTIONS and empty bodies, the body's bytes for a
    # stream (not its chunk framing), never "-".
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        assert c.request("HEAD", "/").status == 200
        assert c.request("OPTIONS", "/").status == 200
        assert c.request("HEAD", "/score?case=empty").status == 200
        assert c.request("GET", "/score?case=empty").status == 200
        assert c.request("GET", "/score?case=stream").body == b"abcde"
        assert c.request("HEAD", "/score?case=stream").status == 200
        assert c.request("GET", "/score?case=status&arg=204").status == 204
    assert access_count(heads_srv, "/", mark, "HEAD") == "0"
    assert access_count(heads_srv, "/", mark, "OPTIONS") == "0"
    assert access_count(heads_srv, r"/score\?case=empty", mark, "HEAD") == "0"
    assert access_count(heads_srv, r"/score\?case=empty", mark) == "0"
    assert access_count(heads_srv, r"/score\?case=stream", mark) == "5"
    assert access_count(heads_srv, r"/score\?case=stream", mark, "HEAD") == "0"
    assert access_count(heads_srv, r"/score\?case=status&arg=204", mark) == "0"
    assert not re.search(r'gunicorn\.access - .*" \d+ - ', heads_srv.stdout()[mark:]), heads_srv.stdout()[mark:]


def test_a_stream_over_http10_is_whole_and_logged(heads_srv):
    # HTTP/1.0 has no chunks: the body is delimited by the close, which waits for the stream's end.
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        c.send_raw(b"GET /score?case=stream HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.one("connection") == "close" and not r.has("transfer-encoding") and r.body == b"abcde", r
    assert access_count(heads_srv, r"/score\?case=stream", mark) == "5"


def test_a_stream_that_breaks_is_cut_and_has_no_access_line(heads_srv):
    # The reference logs the error and writes no access line for it.
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        c.send_raw(b"GET /score?case=stream_fails HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head=True)
        assert head.status == 200 and c.read_chunk(time.monotonic() + 5) == b"ab"
        assert c.peer_closed(timeout=3)
    heads_srv.wait_for_log(r"RuntimeError: the stream broke", since=mark)
    with Conn(heads_srv.port) as c:
        assert c.request("GET", "/score?case=empty").status == 200
    access_count(heads_srv, r"/score\?case=empty", mark)
    assert "case=stream_fails HTTP/1.1" not in heads_srv.stdout()[mark:], heads_srv.stdout()[mark:]


# ---- item 12: 1xx, 204 and 304 have no body ----------------------------------------------------------

def test_204_has_no_body_and_no_content_length(heads_srv):
    with Conn(heads_srv.port) as c:
        c.send_raw(b"GET /score?case=status&arg=204 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        # the reference: no Content-Length, the Content-Type kept, nothing after the head
        assert r.status == 204 and not r.has("content-length") and r.one("content-type") == "application/json", r
        assert c.pending_bytes(0.3) == b""
        assert c.request("GET", "/score?case=empty").status == 200  # the next answer is the next request's


def test_304_has_no_body_and_no_entity_headers(heads_srv):
    with Conn(heads_srv.port) as c:
        c.send_raw(b"GET /score?case=status&arg=304 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        # the reference (Werkzeug): no Content-Length, no Content-Type
        assert r.status == 304 and not r.has("content-length") and not r.has("content-type"), r
        assert c.pending_bytes(0.3) == b""
        c.request("GET", "/score?case=ran")  # forget the generators earlier tests ran
        c.send_raw(b"GET /score?case=status_stream&arg=304 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 304 and r.one("etag") == "e1" and not r.has("transfer-encoding"), r
        assert c.pending_bytes(0.3) == b""
        assert c.request("GET", "/score?case=ran").json() == {"ran": []}  # its generator never ran


@pytest.mark.parametrize("status", [100, 103])
def test_1xx_has_no_body_and_ends_the_connection(heads_srv, status):
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        c.send_raw(f"GET /score?case=status&arg={status} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == status and not r.has("content-length") and not r.has("transfer-encoding"), r
        assert c.peer_closed(timeout=3), "an interim answer must not leave the client waiting for a final one"
    if status == 100:
        heads_srv.wait_for_log(r"W .* run\(\) returned a response with the interim status 100 \(1xx\): it has no body "
                               r"and no final answer follows it, so the connection was closed", since=mark)


# ---- item 13: run() cannot set the headers that frame the answer ---------------------------------------

@pytest.mark.parametrize("name,value", [
    ("Transfer-Encoding", "chunked"), ("Connection", "close"), ("Keep-Alive", "timeout=5"), ("Upgrade", "websocket"),
    ("TE", "trailers"), ("Trailer", "X-A"), ("Proxy-Connection", "keep-alive"), ("Server", "mine"),
    ("Date", "yesterday")])
def test_framing_headers_from_run_are_dropped_and_said(heads_srv, name, value):
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        r = c.request("GET", f"/score?case=header&arg={name}={value}")
        assert r.status == 200 and r.body == b"hello" and r.one("content-length") == "5", r
        assert value not in r.all(name), r
        assert len(r.all("server")) == 1 and len(r.all("date")) == 1, r
        assert c.request("GET", "/score?case=empty").status == 200  # kept alive and in step
    heads_srv.wait_for_log(rf"W .* run\(\) returned a response with the header '{re.escape(name)}: {re.escape(value)}', "
                           r"which was not sent: the server writes the headers that frame the answer", since=mark)


def test_a_framing_header_is_said_once_per_worker(heads_srv):
    with Conn(heads_srv.port) as c:
        for _ in range(3):
            assert c.request("GET", "/score?case=header&arg=Keep-Alive=max=1").status == 200
    assert heads_srv.count_log(r"header 'Keep-Alive: ") == 1


def test_transfer_encoding_from_a_streamed_response_is_not_doubled(heads_srv):
    with Conn(heads_srv.port) as c:
        r = c.request("GET", "/score?case=header_stream&arg=Transfer-Encoding=chunked")
        assert r.all("transfer-encoding") == ["chunked"] and r.chunks == [b"ab", b"cde"], r


def test_a_content_length_that_disagrees_is_replaced_and_said(heads_srv):
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        for declared in ("3", "50", "abc"):
            r = c.request("GET", f"/score?case=length_after&arg={declared}")
            assert r.all("content-length") == ["5"] and r.body == b"hello", r
        # a stream's is checked against what was sent, and the stream goes out chunked and whole
        r = c.request("GET", "/score?case=header_stream&arg=Content-Length=3")
        assert r.one("transfer-encoding") == "chunked" and not r.has("content-length") and r.body == b"abcde", r
        assert c.request("GET", "/score?case=empty").status == 200
    heads_srv.wait_for_log(r"W .* run\(\) returned a response with the header 'Content-Length: 3', which was not "
                           r"sent: the body has 5 bytes", since=mark)


def test_a_content_length_that_agrees_is_not_said(heads_srv):
    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        assert c.request("GET", "/score?case=length_after&arg=5").body == b"hello"
        assert c.request("GET", "/score?case=header_stream&arg=Content-Length=5").body == b"abcde"
        assert c.request("GET", "/score?case=empty").status == 200
    access_count(heads_srv, r"/score\?case=empty", mark)
    assert "Content-Length: " not in heads_srv.stdout()[mark:]


# ---- item 14: a status or reason that is no HTTP is the script's error ---------------------------------

@pytest.mark.parametrize("case,arg,logged", [
    ("status_text", "200 OK\r\nSet-Cookie: x", r'a response with the status text "OK\\r\\nSet-Cookie: x", which has a '
                                              r"line break or another control character"),
    ("status_text", "200 A\x01B", r'a response with the status text "A\\u0001B", which has a line break'),
    ("status_int", "1000", r"a response with the status 1000, which is not an HTTP status code \(100-599\)"),
    ("status_text", "abc", r"a response with the status 0, which is not an HTTP status code \(100-599\)"),
    ("status_int", "99", r"a response with the status 99, which is not an HTTP status code"),
    ("header", "X A=b", r'a response header named "X A", which is not an HTTP header name'),
    ("header", "X:Y=z", r'a response header named "X:Y", which is not an HTTP header name'),
    ("header", "X-A=a\x01b", r"the response header 'X-A' with a line break or another control character"),
])
def test_a_status_or_header_that_is_no_http_is_a_json_500(heads_srv, case, arg, logged):
    from urllib.parse import quote

    mark = heads_srv.mark()
    with Conn(heads_srv.port) as c:
        r = c.request("GET", f"/score?case={case}&arg={quote(arg)}")
        assert r.status == 500 and r.reason == "INTERNAL SERVER ERROR" and r.json() == INTERNAL, r
        assert r.one("x-ms-run-function-failed") == "False" and not r.has("set-cookie"), r
        assert b"\x01" not in r.raw_head and b"Set-Cookie" not in r.raw_head, r.raw_head
        assert c.request("GET", "/score?case=empty").status == 200  # the connection is still in step
    heads_srv.wait_for_log(r"E .* azmlinfsrv - run\(\) returned " + logged + r".*the client got a 500 instead\. ",
                           since=mark)


def test_a_refused_stream_head_stops_the_stream(heads_srv):
    with Conn(heads_srv.port) as c:
        r = c.request("GET", "/score?case=header_stream&arg=X-A=a%01b")
        assert r.status == 500 and r.json() == INTERNAL and not r.has("transfer-encoding"), r
        assert c.request("GET", "/score?case=empty").status == 200 and c.pending_bytes(0.3) == b""


def test_valid_statuses_and_texts_pass(heads_srv):
    with Conn(heads_srv.port) as c:
        r = c.request("GET", "/score?case=status_text&arg=299%20CUSTOM")
        assert (r.status, r.reason, r.body) == (299, "CUSTOM", b"hello"), r
        r = c.request("GET", "/score?case=status_text&arg=200%20A%09B")  # a tab is allowed in a reason
        assert (r.status, r.reason) == (200, "A\tB"), r
        r = c.request("GET", "/score?case=status_int&arg=599")
        assert r.status == 599 and r.body == b"hello", r
        r = c.request("GET", "/score?case=header&arg=X-A=%20%20padded%20%20")
        assert b"\r\nX-A: padded\r\n" in r.raw_head + b"\r\n", r.raw_head  # gunicorn strips the blanks too


# ---- item 15: HTTP/1.0 with Transfer-Encoding ends the connection --------------------------------------

def test_http10_with_transfer_encoding_is_answered_then_closed(body_srv):
    with Conn(body_srv.port) as c:
        c.send_raw(b"POST /score?read=data HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"abcdef"))
        r = c.read_response()
        assert r.status == 200 and r.one("connection") == "close", r
        assert json.loads(r.body)["data"] == "abcdef", r
        assert c.peer_closed(timeout=3)
    with Conn(body_srv.port) as c:  # without Transfer-Encoding, HTTP/1.0 keep-alive is honoured
        c.send_raw(b"POST /score?read=data HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nab")
        r = c.read_response()
        assert r.one("connection") == "keep-alive", r
        assert not c.peer_closed(timeout=0.3)


# ---- item 17: header names with underscores are dropped -------------------------------------------------

def test_header_names_with_underscores_are_dropped(body_srv):
    mark = body_srv.mark()
    with Conn(body_srv.port) as c:
        c.send_raw(b"POST /score?read=data HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\n"
                   b"X-Forwarded-For: 1.2.3.4\r\nContent_Length: 1\r\nContent-Length: 3\r\n\r\nabc")
        d = c.read_response().json()
    # not merged into X-Forwarded-For, and Content_Length does not stand for Content-Length
    assert ["X-Forwarded-For", "1.2.3.4"] in d["headers"] and "6.6.6.6" not in json.dumps(d), d
    assert d["environ_content_length"] == "3" and d["data"] == "abc", d
    body_srv.wait_for_log(r"I .* azmlinfsrv - Dropped the request header\(s\) X_Forwarded_For, Content_Length of POST "
                          r"/score from 127\.0\.0\.1: a name with an underscore reads the same as its dashed form",
                          since=mark)


def test_dropped_headers_still_count_against_the_field_limit(server):  # conftest's: stopped after the test
    srv = server.start("raw_body.py", args=["--limit_request_fields", "3"])
    with Conn(srv.port) as c:
        c.send_raw(b"GET /score HTTP/1.1\r\nHost: x\r\nA_1: 1\r\nA_2: 2\r\nA_3: 3\r\n\r\n")
        assert c.read_response().status == 431


def test_request_headers_parameter_lacks_underscored_names(server):
    srv = server.start("def init():\n    pass\n\n\ndef run(data, request_headers):\n    return request_headers\n")
    with Conn(srv.port) as c:
        d = c.request("POST", "/score", headers=[("X_Trace", "u"), ("X-Trace", "d")], body=b"{}").json()
    assert d.get("X-Trace") == "d", d
