"""Issue 13 (8): reloads (SIGHUP), replacements for age (--max_requests) and TTOU lose no request of a
keep-alive client: a retiring worker answers the next request on each of its connections with
Connection: close, and closes a connection only after such an answer or after it stayed idle."""
import http.client
import signal
import threading
import time

from conftest import wait_workers

SCRIPT = "def init():\n    pass\n\n\ndef run(data):\n    return {'ok': True}\n"


class KeepAliveClient(threading.Thread):
    """One persistent http.client connection, as requests/urllib3 keep one: a new connection only when
    the server said Connection: close (http.client reopens by itself then)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.stop = threading.Event()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("POST", "/score", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                if r.status == 200 and body == b'{"ok": true}':
                    self.ok += 1
                else:
                    self.failures.append((r.status, body[:200]))
            except Exception as e:  # noqa: BLE001 - what a client would see
                self.failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()


def test_keep_alive_clients_lose_nothing_across_reloads_and_replacements(server):
    s = server.start(SCRIPT, args=["--worker_count", "2", "--max_requests", "150"])
    wait_workers(s, 2)
    clients = [KeepAliveClient(s.port) for _ in range(4)]
    for c in clients:
        c.start()
    for _ in range(4):
        time.sleep(1.0)
        s.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    s.proc.send_signal(signal.SIGTTIN)
    time.sleep(1.0)
    s.proc.send_signal(signal.SIGTTOU)
    time.sleep(1.5)
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join(15)
    failures = [f for c in clients for f in c.failures]
    served = sum(c.ok for c in clients)
    assert served > 500, (served, s.logs())
    assert not failures, (len(failures), served, failures[:5])
    assert s.alive()
