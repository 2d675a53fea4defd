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


def test_expect_continue_during_a_drain_gets_its_answer(server):
    """A connection accepted before the drain sends a request with Expect: 100-continue after it began:
    the request is answered (the drain used to send "100 Continue" and then a FIN)."""
    s = server.start("slow_stream.py")
    with socket.create_connection(("127.0.0.1", s.port)) as sock:
        time.sleep(0.1)  # accepted by the worker
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # draining: this connection has the grace to send its request
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        sock.settimeout(5)
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
        sock.sendall(b"hello")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"got 5 bytes"), answer
    assert b"Connection: close\r\n" in answer, answer
    s.wait_exit(10)
