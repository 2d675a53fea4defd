"""Opens N keep-alive connections to HOST:PORT, sends one `GET /` on each and reads its answer, then leaves them idle.

Prints `READY held=H closed=C failed=F secs=S` once every connection is settled (held: open after the answer;
closed: the server closed it, as a server without keep-alive does; failed: no answer in time), then waits for
its stdin to close, counts how many held connections are still open and prints `END still_open=K`.
At most WINDOW connections are in progress at once, so the listener's backlog never overflows.
"""
import errno
import selectors
import socket
import sys
import time

WINDOW = 256


def main():
    host, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    held, closed, failed = [], 0, 0
    started = time.monotonic()
    deadline = started + timeout
    pending = {}  # socket -> bytearray of the answer so far, or None before the request is sent
    opened = 0

    def finish(sock, ok_open):
        nonlocal closed
        sel.unregister(sock)
        del pending[sock]
        if ok_open:
            held.append(sock)
        else:
            closed += 1
            sock.close()

    while (opened < n or pending) and time.monotonic() < deadline:
        while opened < n and len(pending) < WINDOW:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                failed += 1
                s.close()
            else:
                pending[s] = None
                sel.register(s, selectors.EVENT_WRITE)
            opened += 1
        for key, _ in sel.select(0.2):
            s = key.fileobj
            if pending[s] is None:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    sel.unregister(s)
                    del pending[s]
                    failed += 1
                    s.close()
                    continue
                s.send(request)
                pending[s] = bytearray()
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            buf = pending[s]
            buf += chunk
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = bytes(buf[:head_end]).lower()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if len(buf) >= head_end + 4 + length:
                    keep = chunk != b"" and b"connection: close" not in head
                    if keep:
                        finish(s, True)
                        continue
                    # the server closes after its answer: wait for the EOF, or count it closed now
                    finish(s, False)
                    continue
            if chunk == b"":
                sel.unregister(s)
                del pending[s]
                failed += 1
                s.close()
    failed += len(pending) + (n - opened)
    for s in list(pending):
        s.close()
    print(f"READY held={len(held)} closed={closed} failed={failed} secs={time.monotonic() - started:.2f}", flush=True)
    sys.stdin.read()
    still_open = 0
    for s in held:
        try:
            still_open += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
    print(f"END still_open={still_open}", flush=True)


if __name__ == "__main__":
    main()
