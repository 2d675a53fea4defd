"""Issue 13 (4): a stream ends whole when its connection is to close: Connection: close, HTTP/1.0, and
every stream in flight while a worker drains (the connection used to be shut down as soon as no write
was pending, after the first part)."""
import signal
import socket
import threading
import time

from bb_http import request

WHOLE = b"first;second;third;"


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def dechunk(body):
    out, rest = b"", body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2:]


def test_stream_with_connection_close_is_whole(server):
    s = server.start("slow_stream.py")
    with socket.create_connection(("127.0.0.1", s.port)) as sock:
        sock.sendall(b"GET /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = read_all(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head, raw
    assert dechunk(body) == WHOLE, raw


def test_stream_over_http10_is_whole(server):
    s = server.start("slow_stream.py")
    r = request(s.port, "GET", "/score", version="HTTP/1.0")
    assert r.status == 200 and r.body == WHOLE, r


def test_streams_in_flight_finish_during_a_drain(server):
    s = server.start("slow_stream.py")
    results = {}

    def fetch(name):
        try:
            results[name] = request(s.port, "GET", "/score", timeout=10)
        except Exception as e:  # noqa: BLE001
            results[name] = e

    t = threading.Thread(target=fetch, args=("stream",))
    t.start()
    time.sleep(0.15)  # the first part is out
    s.proc.send_signal(signal.SIGTERM)
    t.join(15)
    r = results["stream"]
    assert not isinstance(r, Exception), (r, s.logs())
    assert r.status == 200 and r.body == WHOLE, r
    s.wait_exit(10)
