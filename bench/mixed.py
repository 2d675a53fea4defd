"""The mixed workload (issue 14): one client sends requests whose run() takes 200 ms, back to back; two
clients send fast requests every 10 ms. What matters is the fast requests: how many were served and how
long they waited (p50, p99), since a fast request that waits behind a busy worker while another worker is
idle is the production case a pre-fork server must get right.

    /usr/bin/python3 bench/mixed.py            # 10 s per run; BENCH_MIXED_SECONDS, BENCH_MIXED_WORKERS=2,4,
                                               # BENCH_MIXED_PEERS=gunicorn+flask,uwsgi,azmlinfsrv

Each peer runs with the same worker count, with new connections per request and with keep-alive:
gunicorn sync + Flask (the reference's design: a worker accepts only when it is free), uWSGI (when
installed: bash bench/run.sh installs it), and ours. Absolute numbers drift on shared machines; compare
the peers of one run.
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCRIPT = os.path.join(HERE, "scripts", "mixed.py")
PEERS_DIR = os.path.join(HERE, "peers")
SERVER = os.environ.get("BENCH_SERVER") or os.path.join(REPO, "build", "azmlinfsrv")
SECONDS = float(os.environ.get("BENCH_MIXED_SECONDS", "10"))
WORKER_COUNTS = [int(n) for n in os.environ.get("BENCH_MIXED_WORKERS", "2,4").split(",")]
ONLY_PEERS = [p for p in os.environ.get("BENCH_MIXED_PEERS", "").split(",") if p]
FAST_EVERY_S = 0.010
FAST_CLIENTS = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for_peers():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AML_", "AZUREML_"))}
    env.update({"AZUREML_ENTRY_SCRIPT": SCRIPT, "AML_APP_ROOT": os.path.dirname(SCRIPT)})
    return env


def launch(peer, workers, port, logdir):
    log = open(os.path.join(logdir, f"{peer}-{workers}.log"), "wb")
    if peer == "gunicorn+flask":
        argv = ["/usr/bin/python3", "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers), "--timeout", "300",
                "--backlog", "2048", "--error-logfile", "/dev/null", "--chdir", PEERS_DIR, "flask_app:app"]
    elif peer == "uwsgi":
        argv = ["uwsgi", "--plugin", "python3", "--http-socket", f"127.0.0.1:{port}", "--master", "--processes",
                str(workers), "--lazy-apps", "--die-on-term", "--disable-logging", "--need-app", "--listen", "2048",
                # its http-socket closes after each answer: say so, or keep-alive clients reuse a closed socket
                "--add-header", "Connection: close",
                "--wsgi-file", os.path.join(PEERS_DIR, "uwsgi_app.py")]
    else:
        argv = [SERVER, "--entry_script", SCRIPT, "--port", str(port), "--worker_count", str(workers)]
    return subprocess.Popen(argv, env=env_for_peers(), cwd=os.path.dirname(SCRIPT), stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_ready(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {proc.returncode}; see its log")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("POST", "/score", body=b'{"warm": 1}', headers={"Content-Type": "application/json"})
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server on port {port} did not answer within {timeout} s")


class Client(threading.Thread):
    def __init__(self, port, body, every_s, keep_alive, until):
        super().__init__(daemon=True)
        self.port, self.body, self.every_s, self.keep_alive, self.until = port, body, every_s, keep_alive, until
        self.latencies = []
        self.errors = 0

    def run(self):
        conn = None
        next_at = time.monotonic()
        while time.monotonic() < self.until:
            if self.every_s:
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_at += self.every_s
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/score", body=self.body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.errors += 1
                else:
                    self.latencies.append(time.monotonic() - started)
                if not self.keep_alive or r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except OSError:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def measure(peer, workers, keep_alive, logdir):
    port = free_port()
    proc = launch(peer, workers, port, logdir)
    try:
        wait_ready(port, proc)
        until = time.monotonic() + SECONDS
        slow = Client(port, b'{"slow": true}', 0, keep_alive, until)
        fast = [Client(port, b'{"fast": 1}', FAST_EVERY_S, keep_alive, until) for _ in range(FAST_CLIENTS)]
        for c in [slow] + fast:
            c.start()
        for c in [slow] + fast:
            c.join(SECONDS + 60)
    finally:
        stop(proc)
    lat = sorted(x for c in fast for x in c.latencies)
    p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan"))
    return {"fast": len(lat), "p50": p(0.50), "p99": p(0.99), "slow": len(slow.latencies),
            "errors": slow.errors + sum(c.errors for c in fast)}


def available(peer):
    if peer == "gunicorn+flask":
        return subprocess.run(["/usr/bin/python3", "-c", "import gunicorn, flask"], capture_output=True).returncode == 0
    if peer == "uwsgi":
        return shutil.which("uwsgi") is not None and os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so")
    return os.access(SERVER, os.X_OK)


def main():
    peers = [p for p in ("gunicorn+flask", "uwsgi", "azmlinfsrv") if available(p) and (not ONLY_PEERS or p in ONLY_PEERS)]
    missing = {p for p in ("gunicorn+flask", "uwsgi", "azmlinfsrv") if not available(p)}
    if missing:
        print(f"mixed: not run (not installed): {', '.join(sorted(missing))}; bash bench/run.sh installs the peers")
    logdir = tempfile.mkdtemp(prefix="azmlinfsrv-mixed-")
    print(f"mixed: one client of 200 ms requests back to back, {FAST_CLIENTS} clients of fast requests every "
          f"{FAST_EVERY_S * 1000:.0f} ms, {SECONDS:.0f} s per run; logs in {logdir}")
    print(f"{'peer':<16} {'workers':>7} {'connections':<12} {'fast served':>11} {'fast p50 ms':>11} "
          f"{'fast p99 ms':>11} {'slow served':>11} {'errors':>6}")
    results = {}
    for workers in WORKER_COUNTS:
        for keep_alive in (False, True):
            for peer in peers:
                r = measure(peer, workers, keep_alive, logdir)
                results[(peer, workers, keep_alive)] = r
                print(f"{peer:<16} {workers:>7} {'keep-alive' if keep_alive else 'new':<12} {r['fast']:>11} "
                      f"{r['p50']:>11.1f} {r['p99']:>11.1f} {r['slow']:>11} {r['errors']:>6}", flush=True)
    print("\nours against gunicorn+flask (the reference's design), fast requests served and p99:")
    for workers in WORKER_COUNTS:
        for keep_alive in (False, True):
            ours = results.get(("azmlinfsrv", workers, keep_alive))
            ref = results.get(("gunicorn+flask", workers, keep_alive))
            if ours and ref and ref["fast"]:
                print(f"  w{workers} {'keep-alive' if keep_alive else 'new':<10}: served {ours['fast'] / ref['fast']:.2f}x, "
                      f"p99 {ours['p99']:.1f} ms vs {ref['p99']:.1f} ms (target: at most 10 ms, at least as many served)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
