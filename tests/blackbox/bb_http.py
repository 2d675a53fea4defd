"""Tiny raw-socket HTTP/1.x client for the black-box tests.

We do not use requests/http.client for assertions because we need to see
duplicate headers, exact bytes, HEAD responses without bodies and whether the
server closes the connection.
"""
import json
import socket
import time


class Response:
    def __init__(self, version, status, reason, headers, body, chunks=None, raw_head=b""):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), order and duplicates kept
        self.body = body
        self.chunks = chunks  # list of chunk payloads when chunked, else None
        self.raw_head = raw_head

    def all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def get(self, name, default=None):
        vals = self.all(name)
        return vals[0] if vals else default

    def has(self, name):
        return bool(self.all(name))

    def one(self, name):
        """The single value of a header; fails if absent or duplicated."""
        vals = self.all(name)
        assert len(vals) == 1, f"expected exactly one {name!r} header, got {vals!r}; headers={self.headers!r}"
        return vals[0]

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} headers={self.headers!r} body={self.body[:300]!r}>"


class ConnectionClosed(Exception):
    pass


class Conn:
    """One TCP connection to 127.0.0.1:port."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- sending -------------------------------------------------------
    def send_raw(self, data):
        self.sock.sendall(data)

    @staticmethod
    def build(method, path, headers=None, body=None, version="HTTP/1.1", host=True, content_length=True):
        if headers is None:
            headers = []
        elif isinstance(headers, dict):
            headers = list(headers.items())
        names = {k.lower() for k, _ in headers}
        lines = [f"{method} {path} {version}"]
        if host and "host" not in names:
            lines.append("Host: 127.0.0.1")
        for k, v in headers:
            lines.append(f"{k}: {v}")
        if body is None:
            body = b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if content_length and "content-length" not in names and "transfer-encoding" not in names:
            if body or method in ("POST", "PUT", "PATCH"):
                lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def request(self, method, path, headers=None, body=None, version="HTTP/1.1", timeout=None):
        self.send_raw(self.build(method, path, headers, body, version))
        return self.read_response(head=(method == "HEAD"), timeout=timeout)

    # -- receiving -----------------------------------------------------
    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for response bytes")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionClosed("connection closed by server")
        self.buf += data

    def _readline(self, deadline):
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _readn(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_chunk(self, deadline):
        """The next chunk of a chunked body, or None at its end (after the trailers)."""
        size = int(self._readline(deadline).split(b";")[0].strip(), 16)
        if size == 0:
            while self._readline(deadline) != b"":  # trailers until the empty line
                pass
            return None
        data = self._readn(size, deadline)
        assert self._readn(2, deadline) == b"\r\n", "bad chunk terminator"
        return data

    def read_response(self, head=False, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k, v.strip(" \t")))
        resp = Response(version, status, reason, headers, b"", raw_head=raw_head)
        if head or status in (204, 304) or 100 <= status < 200:
            return resp
        te = ",".join(resp.all("transfer-encoding")).lower()
        if "chunked" in te:
            chunks = []
            while (chunk := self.read_chunk(deadline)) is not None:
                chunks.append(chunk)
            resp.chunks = chunks
            resp.body = b"".join(chunks)
        elif resp.has("content-length"):
            resp.body = self._readn(int(resp.all("content-length")[0]), deadline)
        else:
            # read until close
            try:
                while True:
                    self._fill(deadline)
            except ConnectionClosed:
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def peer_closed(self, timeout=2.0):
        """True if the server closes the connection (EOF/RST) within timeout
        without sending further bytes. Raises if unexpected bytes arrive."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not data:
                return True
            self.buf += data
            raise AssertionError(f"unexpected extra bytes from server: {self.buf[:300]!r}")

    def pending_bytes(self, wait=0.3):
        """Return any bytes that arrive within `wait` seconds (without blocking longer)."""
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            self.buf += data
        out, self.buf = self.buf, b""
        return out


def request(port, method, path, headers=None, body=None, version="HTTP/1.1", timeout=10.0):
    """One request on a fresh connection, then close it."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, path, headers=headers, body=body, version=version, timeout=timeout)
