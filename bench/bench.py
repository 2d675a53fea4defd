"""The bench driver: starts each peer, drives it with wrk, measures, stops it, prints the tables and the ratios.

Run it through bench/run.sh, which installs the peers and raises `ulimit -n`. Settings come from the environment
(see bench/README.md). Every process started here runs in its own session (process group); its group id is written
to BENCH_PIDFILE while it lives, so run.sh's trap can stop whatever an interrupted run leaves behind, and each is
stopped here by its group id in a `finally`.
"""
import http.client
import json
import os
import pickle
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCRIPTS = os.path.join(HERE, "scripts")
PEERS_DIR = os.path.join(HERE, "peers")
PYTHON = "/usr/bin/python3"  # Debian's interpreter: the one uWSGI, gunicorn and azmlinfsrv embed or run


def env_num(name, default, kind=float):
    value = os.environ.get(name, "")
    return kind(value) if value != "" else default


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
DURATION = env_num("BENCH_DURATION", 2 if QUICK else 10, int)
WARMUP = env_num("BENCH_WARMUP", 0 if QUICK else 1, int)
STARTUP_TRIALS = env_num("BENCH_STARTUP_TRIALS", 1 if QUICK else 9, int)
ROUNDS = max(1, env_num("BENCH_ROUNDS", 1, int))
IDLE_CONNS = env_num("BENCH_IDLE_CONNS", 10000, int)
SERVER = os.environ.get("BENCH_SERVER", os.path.join(REPO, "build", "azmlinfsrv"))
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")
PIDFILE = os.environ.get("BENCH_PIDFILE", "")
ONLY_PEERS = [p for p in os.environ.get("BENCH_PEERS", "").split(",") if p]
ONLY_CASES = [c for c in os.environ.get("BENCH_CASES", "").split(",") if c]
# Scaling mode: only azmlinfsrv, at each of these worker counts, on hello and a CPU-bound run().
SCALING = [int(n) for n in os.environ.get("BENCH_SCALING", "").split(",") if n]

HELLO_BODY = '{"data": "hello"}'


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- processes

class Proc:
    """A process started in its own session; stopped by its process-group id."""

    live = []

    def __init__(self, argv, env=None, cwd=None, logname=None, stdin=subprocess.DEVNULL, stdout=None):
        self.logfile = None
        if stdout is None:
            if KEEP and logname:
                self.logfile = open(os.path.join(TMP, logname + ".log"), "ab")
                stdout = self.logfile
            else:
                stdout = subprocess.DEVNULL
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(argv, env=full_env, cwd=cwd, stdin=stdin, stdout=stdout,
                                  stderr=subprocess.STDOUT if stdout is not subprocess.PIPE else subprocess.DEVNULL,
                                  start_new_session=True)
        self.pid = self.p.pid
        Proc.live.append(self)
        self._registry(add=True)

    def _registry(self, add):
        if not PIDFILE:
            return
        if add:
            with open(PIDFILE, "a") as f:
                f.write(f"{self.pid}\n")
        else:
            try:
                with open(PIDFILE) as f:
                    pids = [line.strip() for line in f if line.strip() and line.strip() != str(self.pid)]
                with open(PIDFILE, "w") as f:
                    f.write("".join(p + "\n" for p in pids))
            except FileNotFoundError:
                pass

    def _signal_group(self, sig):
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        if self not in Proc.live:
            return
        self._signal_group(sig)
        try:
            self.p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.p.wait()
        # children that outlive their leader (a worker mid-exit) still belong to the group
        deadline = time.monotonic() + grace
        while group_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if group_alive(self.pid):
            self._signal_group(signal.SIGKILL)
        Proc.live.remove(self)
        self._registry(add=False)
        if self.logfile:
            self.logfile.close()

    @classmethod
    def stop_all(cls):
        for proc in list(reversed(cls.live)):
            try:
                proc.stop(grace=3.0)
            except Exception as ex:  # keep stopping the others
                log(f"could not stop {proc.pid}: {ex}")


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, first); None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(entry)
            if fields is not None and int(fields[1]) == pid:
                out.append(int(entry))
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_rss_mib(pid):
    kids = children(pid)
    return sum(rss_kib(k) for k in kids) / 1024.0, len(kids)


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids):
    """utime + stime of these processes (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def get_root(port, timeout=1.0):
    """One `GET /` on a fresh connection; the status code, or None when nothing answers yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            if data.startswith(b"HTTP/1."):
                return int(data[9:12])
    except (OSError, ValueError):
        pass
    return None


def check_answer(port, case):
    """One POST /score with the case's body: the peer must answer 200 with exactly the expected bytes."""
    with open(os.path.join(TMP, f"body-{case['body']}.json"), "rb") as f:
        body = f.read()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        got = resp.read()
    finally:
        conn.close()
    if resp.status != 200 or got != case["expected"].encode():
        raise RuntimeError(f"wrong answer: {resp.status} {got[:80]!r}")


def wait_ready(proc, port, timeout):
    """Polls `GET /` in a tight loop (1 ms apart) until it answers 200; seconds from now, or raises."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if get_root(port) == 200:
            return time.monotonic() - start
        if proc.p.poll() is not None:
            raise RuntimeError(f"exited with {proc.p.returncode} before answering GET /")
        time.sleep(0.001)
    raise RuntimeError(f"no 200 on GET / within {timeout:.0f} s")


# ---------------------------------------------------------------------------------------------- peers

def nginx_conf(port, case):
    root = os.path.join(TMP, "nginx_root")
    if case["nginx"] == "file":
        score = f"root {root}; error_page 405 =200 $uri;"
    else:
        score = "return 200 '" + case["expected"] + "';"
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
worker_processes 1;
daemon off;
master_process on;
pid {TMP}/nginx-{port}.pid;
error_log {TMP}/nginx-error.log warn;
worker_rlimit_nofile {IDLE_CONNS + 2000};
events {{ worker_connections {IDLE_CONNS + 1000}; }}
http {{
    access_log off;
    default_type application/json;
    client_body_temp_path {TMP}/nginx_tmp/body;
    proxy_temp_path {TMP}/nginx_tmp/proxy;
    fastcgi_temp_path {TMP}/nginx_tmp/fastcgi;
    uwsgi_temp_path {TMP}/nginx_tmp/uwsgi;
    scgi_temp_path {TMP}/nginx_tmp/scgi;
    client_max_body_size 64m;
    client_body_buffer_size 4m;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    server {{
        listen 127.0.0.1:{port} backlog=2048;
        location = / {{ default_type "text/html; charset=utf-8"; return 200 "Healthy"; }}
        location = /score {{ {score} }}
    }}
}}
"""


def launch_nginx(port, case):
    conf = os.path.join(TMP, f"nginx-{port}.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(port, case))
    return Proc(["nginx", "-p", TMP, "-e", os.path.join(TMP, "nginx-error.log"), "-c", conf], logname="nginx")


def script_env(case):
    return {"AZUREML_ENTRY_SCRIPT": os.path.join(SCRIPTS, case["script"]), "AZUREML_MODEL_DIR": MODEL_DIR,
            "AML_APP_ROOT": SCRIPTS}


def launch_uwsgi(port, case):
    return Proc(["uwsgi", "--plugin", "python3", "--http-socket", f"127.0.0.1:{port}", "--master", "--processes", "1",
                 "--lazy-apps", "--die-on-term", "--disable-logging", "--add-header", "Connection: close", "--need-app", "--listen", "2048",
                 "--wsgi-file", os.path.join(PEERS_DIR, "uwsgi_app.py")],
                env=script_env(case), cwd=SCRIPTS, logname="uwsgi")


def launch_gunicorn(port, case):
    # the reference's command line (docs/behaviour.md 2.1), bound to loopback
    return Proc(["gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "300", "--backlog", "2048",
                 "--access-logfile", "-", "--error-logfile", "/dev/null", "--chdir", PEERS_DIR, "flask_app:app"],
                env=script_env(case), cwd=SCRIPTS, logname="gunicorn")


def launch_ours(workers):
    def launch(port, case):
        return Proc([SERVER, "--entry_script", os.path.join(SCRIPTS, case["script"]), "--model_dir", MODEL_DIR,
                     "--port", str(port), "--worker_count", str(workers)],
                    env={"AML_APP_ROOT": SCRIPTS}, cwd=SCRIPTS, logname=f"azmlinfsrv-w{workers}")
    return launch


PEERS = [
    ("nginx", launch_nginx),
    ("uwsgi", launch_uwsgi),
    ("gunicorn+flask", launch_gunicorn),
    ("azmlinfsrv w1", launch_ours(1)),
    ("azmlinfsrv w2", launch_ours(2)),
]
OURS = ["azmlinfsrv w1", "azmlinfsrv w2"]

# ---------------------------------------------------------------------------------------------- set-up


def setup():
    os.makedirs(os.path.join(TMP, "nginx_root"))
    os.makedirs(os.path.join(TMP, "nginx_tmp"))
    os.chmod(TMP, 0o755)
    os.makedirs(MODEL_DIR)
    # a tiny LogisticRegression on iris (the data set ships inside scikit-learn)
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    with open(os.path.join(MODEL_DIR, "iris_lr.pkl"), "wb") as f:
        pickle.dump(model, f)
    iris_rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
    iris_body = json.dumps({"data": iris_rows})
    iris_out = json.dumps(model.predict(iris_rows).tolist())
    # a 1 MiB JSON document: {"data": [floats...]}
    rng = random.Random(7)
    values = []
    size = len('{"data": []}')
    while size < 1024 * 1024 - 24:
        v = f"{rng.random():.15f}"
        values.append(v)
        size += len(v) + 2
    big_body = '{"data": [' + ", ".join(values) + "]}"
    big_body += " " * (1024 * 1024 - len(big_body))  # exactly 1 MiB
    bodies = {"hello": HELLO_BODY, "iris": iris_body, "big": big_body}
    for name, text in bodies.items():
        with open(os.path.join(TMP, f"body-{name}.json"), "w") as f:
            f.write(text)
    # what nginx sends for the echo case: exactly the bytes the Python peers answer
    with open(os.path.join(TMP, "nginx_root", "score"), "w") as f:
        f.write(json.dumps(big_body))
    return iris_out, json.dumps(big_body)


def make_cases(iris_out, echo_out):
    hello = json.dumps({"message": "Hello, World!"})
    cases = [
        dict(key="hello", title="hello, keep-alive (-c32)", script="hello.py", body="hello", conns=32,
             expected=hello, nginx="return"),
        dict(key="close", title="hello, Connection: close (-c32)", script="hello.py", body="hello", conns=32,
             close=True, expected=hello, nginx="return"),
        dict(key="echo1m", title="1 MiB JSON body echoed (-c8)", script="echo.py", body="big", conns=8,
             expected=echo_out, nginx="file"),
        dict(key="sklearn", title="sklearn LogisticRegression predict, 4 rows (-c32)", script="iris.py",
             body="iris", conns=32, expected=iris_out, nginx="return"),
        dict(key="idle10k", title=f"{IDLE_CONNS} idle keep-alive connections + hello keep-alive (-c32)",
             script="hello.py", body="hello", conns=32, idle=IDLE_CONNS, expected=hello, nginx="return"),
    ]
    return [c for c in cases if not ONLY_CASES or c["key"] in ONLY_CASES]


# ---------------------------------------------------------------------------------------------- measuring

def run_wrk(port, case, seconds):
    env = {"BENCH_BODY_FILE": os.path.join(TMP, f"body-{case['body']}.json"),
           "BENCH_CONN_CLOSE": "1" if case.get("close") else "0"}
    argv = ["wrk", "-t1", f"-c{case['conns']}", f"-d{seconds}s", "--latency", "--timeout", "5s",
            "-s", os.path.join(HERE, "wrk.lua"), f"http://127.0.0.1:{port}/score"]
    proc = Proc(argv, env=env, stdout=subprocess.PIPE)
    try:
        out, _ = proc.p.communicate(timeout=seconds + 30)
    finally:
        proc.stop()
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError("wrk printed no summary:\n" + out.decode(errors="replace")[-2000:])


def run_case(peer, launch, case):
    port = free_port()
    server = launch(port, case)
    idle = None
    result = {"peer": peer, "case": case["key"]}
    try:
        wait_ready(server, port, 60)
        check_answer(port, case)
        if case.get("idle"):
            idle = Proc([PYTHON, os.path.join(HERE, "idle.py"), "127.0.0.1", str(port), str(case["idle"]), "90"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            line = idle.p.stdout.readline().decode().split()
            if not line or line[0] != "READY":
                raise RuntimeError(f"idle helper failed: {line}")
            stats = dict(kv.split("=") for kv in line[1:])
            result["idle"] = stats
        if WARMUP:
            run_wrk(port, case, WARMUP)
        workers = children(server.pid)
        cpu_before = cpu_ticks(workers)
        w = run_wrk(port, case, DURATION)
        cpu_used = cpu_ticks(workers) - cpu_before
        result["cpu_us_per_req"] = cpu_used / TICKS_PER_S * 1e6 / w["requests"] if w["requests"] else None
        result["rps"] = w["requests"] / (w["duration_us"] / 1e6)
        result["p50_ms"] = w["p50_us"] / 1000.0
        result["p99_ms"] = w["p99_us"] / 1000.0
        result["non2xx"] = w["status"]
        result["sock_err"] = w["connect"] + w["read"] + w["write"] + w["timeout"]
        result["rss_mib"], result["workers"] = worker_rss_mib(server.pid)
        if idle:
            idle.p.stdin.close()
            end = idle.p.stdout.readline().decode().split()
            if end and end[0] == "END":
                result["idle"]["still_open"] = end[1].split("=")[1]
    except Exception as ex:
        result["error"] = str(ex).splitlines()[0][:120]
    finally:
        if idle:
            idle.stop()
        server.stop()
    return result


def launch_once(launch, case):
    """One launch: (milliseconds to the first 200 on GET /, the idle workers' RSS then)."""
    port = free_port()
    start = time.monotonic()
    server = launch(port, case)
    try:
        wait_ready(server, port, 60)
        ms = (time.monotonic() - start) * 1000.0
        return ms, worker_rss_mib(server.pid)
    finally:
        server.stop()


def measure_startup(case):
    """{peer: (median ms, RSS)}. The trials go round the peers, as the rounds do, so that a slower moment
    of this shared machine weighs on every peer alike rather than on whichever was being measured."""
    trials, failed = {}, set()
    for _ in range(STARTUP_TRIALS):
        for peer, launch in PEERS:
            if peer in failed:
                continue
            try:
                trials.setdefault(peer, []).append(launch_once(launch, case))
            except Exception as ex:
                failed.add(peer)
                log(f"startup  {peer:<15} FAILED: {ex}")
    startup = {}
    for peer, runs in trials.items():
        if peer not in failed:
            startup[peer] = (statistics.median(ms for ms, _ in runs), runs[-1][1])
            log(f"startup  {peer:<15} {startup[peer][0]:8.1f} ms")
    return startup


# ---------------------------------------------------------------------------------------------- report

def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except Exception:
        return "?"


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_report(cases, results, startup):
    out = []
    w = out.append
    w("")
    w(f"azmlinfsrv bench: {DURATION} s per case" + (f" after {WARMUP} s warm-up" if WARMUP else "")
      + (f", median of {ROUNDS} rounds" if ROUNDS > 1 else "")
      + f", wrk -t1, {os.cpu_count()} CPUs, load average at start {LOAD_AT_START}")
    for case in cases:
        w(f"  {case['key']:<9} {case['title']}")
    w("")
    header = (f"{'case':<9} {'peer':<15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'errors':>9} "
              f"{'RSS MiB':>10}  notes")
    w(header)
    w("-" * len(header))
    for case in cases:
        for peer, _ in PEERS:
            r = results.get((case["key"], peer))
            if r is None:
                continue
            notes = []
            if "error" in r:
                notes.append("FAILED: " + r["error"])
            if "idle" in r:
                i = r["idle"]
                notes.append(f"idle held {i.get('held')}/{IDLE_CONNS} (closed {i.get('closed')}, failed "
                             f"{i.get('failed')}, {i.get('secs')} s), open after load {i.get('still_open', '?')}")
            errors = None if "rps" not in r else f"{r['non2xx']}/{r['sock_err']}"
            rss = None if "rss_mib" not in r else f"{r['rss_mib']:.1f}" + (f" ({r['workers']})" if r["workers"] != 1 else "")
            w(f"{case['key']:<9} {peer:<15} {fmt(r.get('rps'), '9.0f')} {fmt(r.get('p50_ms'), '8.2f')} "
              f"{fmt(r.get('p99_ms'), '8.2f')} {fmt(r.get('cpu_us_per_req'), '10.1f')} {errors or '-':>9} {rss or '-':>10}  {'; '.join(notes)}")
        w("")
    w("errors = non-2xx responses / socket errors (connect, read, write, timeout) as wrk counts them;")
    w("CPU us/req = user + system CPU time of the worker processes (all threads) during the measured run, per request;")
    w("RSS = VmRSS summed over the worker processes (count in parentheses when not 1), read after the load.")
    w("")
    if startup:
        w(f"start-up: launch to the first GET / 200, hello.py (empty init), median of {STARTUP_TRIALS}")
        w(f"{'peer':<15} {'ms':>8} {'idle worker RSS MiB':>20}")
        for peer, _ in PEERS:
            if peer in startup:
                ms, (rss, n) = startup[peer]
                w(f"{peer:<15} {ms:8.1f} {rss:20.1f}" + (f" ({n})" if n != 1 else ""))
        w("")
    w("ratios, ours / peer: req/s (higher is better for us), p99 (lower is better for us)")
    peers = [p for p, _ in PEERS if p not in OURS]
    for ours in [p for p, _ in PEERS if p in OURS]:
        w(f"  {ours}")
        w(f"  {'case':<9} " + " ".join(f"{p:>24}" for p in peers))
        for case in cases:
            cells = []
            o = results.get((case["key"], ours), {})
            for p in peers:
                r = results.get((case["key"], p), {})
                if "rps" in o and "rps" in r and r["rps"] > 0 and r["p99_ms"] > 0:
                    cells.append(f"{o['rps'] / r['rps']:6.2f}x rps {o['p99_ms'] / r['p99_ms']:6.2f}x p99")
                else:
                    cells.append("-")
            w(f"  {case['key']:<9} " + " ".join(f"{c:>24}" for c in cells))
        if startup and ours in startup:
            cells = []
            for p in peers:
                if p in startup:
                    cells.append(f"{startup[ours][0] / startup[p][0]:6.2f}x start-up ms")
                else:
                    cells.append("-")
            w(f"  {'start-up':<9} " + " ".join(f"{c:>24}" for c in cells))
        w("")
    out.extend(target_lines(results, startup))
    print("\n".join(out), flush=True)


def target_lines(results, startup):
    """Issue 7's acceptance, judged from this run's numbers (ours with one worker)."""
    ours = "azmlinfsrv w1"
    checks = []

    def measured(case, peer, field):
        return results.get((case, peer), {}).get(field)

    def at_least_times(case, peer, times, label):
        a, b = measured(case, ours, "rps"), measured(case, peer, "rps")
        checks.append((label, None if a is None or not b else a / b, lambda v: v >= times, "{:.2f}x"))

    def at_most(value, limit, label, form):
        checks.append((label, value, lambda v: v <= limit, form))

    at_least_times("hello", "nginx", 0.5, "hello keep-alive >= 0.5x nginx")
    at_least_times("close", "nginx", 0.9, "Connection: close >= 0.9x nginx")
    at_least_times("hello", "uwsgi", 3.0, "hello keep-alive >= 3x uWSGI")
    at_least_times("hello", "gunicorn+flask", 25.0, "hello keep-alive >= 25x gunicorn + Flask")
    at_most(measured("hello", ours, "p99_ms"), 1.0, "p99 <= 1 ms at 32 connections (hello)", "{:.2f} ms")
    at_most(measured("hello", ours, "rss_mib"), 16.0, "worker RSS <= 16 MiB (hello)", "{:.1f} MiB")
    at_most(startup[ours][0] if ours in startup else None, 50.0, "launch to first 200 <= 50 ms (empty init)",
            "{:.1f} ms")
    lines = ["targets of issue 7, from this run (azmlinfsrv with one worker):"]
    for label, value, holds, form in checks:
        verdict = "not measured" if value is None else ("met" if holds(value) else "NOT met")
        lines.append(f"  {label:<48} {'-' if value is None else form.format(value):>10}  {verdict}")
    lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------- main

def scaling_cases():
    hello = json.dumps({"message": "Hello, World!"})
    return [dict(key="hello", title="hello, keep-alive", script="hello.py", body="hello", expected=hello),
            dict(key="cpu", title="run() of about 4 ms of pure Python", script="cpu.py", body="hello",
                 expected=json.dumps({"total": sum(i * i % 7 for i in range(60000))}))]


def run_scaling():
    """Each worker count against one worker, on the same machine in the same run: what adding workers
    buys, and where the machine's cores end it."""
    log(f"bench: scaling mode, workers {SCALING}, {DURATION} s per run, {os.cpu_count()} CPUs")
    rows = []
    for case in scaling_cases():
        base = None
        for workers in SCALING:
            case = dict(case, conns=max(32, 4 * workers))
            r = run_case(f"azmlinfsrv w{workers}", launch_ours(workers), case)
            if "error" in r:
                log(f"{case['key']:<6} w{workers:<3} FAILED: {r['error']}")
                continue
            base = base or r["rps"]
            rows.append((case["key"], workers, r, r["rps"] / base))
            log(f"{case['key']:<6} w{workers:<3} {r['rps']:9.0f} req/s  p99 {r['p99_ms']:.2f} ms")
    print(f"\nscaling on {os.cpu_count()} CPUs (load at start {LOAD_AT_START}); ratio = req/s / req/s of the "
          "first worker count")
    print(f"{'case':<6} {'workers':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}")
    for key, workers, r, ratio in rows:
        print(f"{key:<6} {workers:>7} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {ratio:>6.2f}x")


def main():
    global TMP, MODEL_DIR, LOAD_AT_START, PEERS
    if ONLY_PEERS:
        PEERS = [p for p in PEERS if p[0] in ONLY_PEERS or p[0].split()[0] in ONLY_PEERS]
    if not os.access(SERVER, os.X_OK):
        sys.exit(f"bench: {SERVER} is not an executable (build first, or set BENCH_SERVER)")
    TMP = os.environ.get("BENCH_TMPDIR") or tempfile.mkdtemp(prefix="azmlinfsrv-bench.")
    MODEL_DIR = os.path.join(TMP, "model")
    with open("/proc/loadavg") as f:
        LOAD_AT_START = " ".join(f.read().split()[:3])

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        log(f"bench: temp dir {TMP}; {DURATION} s per case, warm-up {WARMUP} s")
        for name, argv in [("azmlinfsrv", ["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
                           ("nginx", ["nginx", "-v"]), ("uwsgi", ["uwsgi", "--version"]),
                           ("gunicorn", ["gunicorn", "--version"]), ("wrk", ["wrk", "-v"]),
                           ("python", [PYTHON, "--version"]),
                           ("flask", [PYTHON, "-c", "import importlib.metadata as m; print(m.version('flask'))"]),
                           ("sklearn", [PYTHON, "-c", "import sklearn; print(sklearn.__version__)"])]:
            log(f"  {name}: {version(argv)}")
        cases = make_cases(*setup())
        if SCALING:
            run_scaling()
            return
        results = {}
        startup = {}
        if not ONLY_CASES or "startup" in ONLY_CASES:
            hello_case = dict(script="hello.py", expected=json.dumps({"message": "Hello, World!"}), nginx="return")
            startup = measure_startup(hello_case)
        rounds = {}
        for round_no in range(ROUNDS):
            for case in cases:
                for peer, launch in PEERS:
                    r = run_case(peer, launch, case)
                    rounds.setdefault((case["key"], peer), []).append(r)
                    tag = f"[{round_no + 1}/{ROUNDS}] " if ROUNDS > 1 else ""
                    if "error" in r:
                        log(f"{tag}{case['key']:<9} {peer:<15} FAILED: {r['error']}")
                    else:
                        log(f"{tag}{case['key']:<9} {peer:<15} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
                            f"p99 {r['p99_ms']:.2f} ms  errors {r['non2xx']}/{r['sock_err']}  "
                            f"RSS {r['rss_mib']:.1f} MiB" + (f"  idle {r['idle']}" if "idle" in r else ""))
        for key, runs in rounds.items():
            # the round with the median req/s stands for the peer (a failed round, when there is one, is shown)
            failed = [r for r in runs if "error" in r]
            good = sorted((r for r in runs if "error" not in r), key=lambda r: r["rps"])
            results[key] = failed[0] if failed else good[(len(good) - 1) // 2]
        print_report(cases, results, startup)
    finally:
        Proc.stop_all()
        if os.environ.get("BENCH_TMPDIR"):
            pass  # run.sh owns the directory and removes it (or says where it is kept)
        elif KEEP:
            log(f"bench: logs and files kept in {TMP}")
        else:
            shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as ex:
        sys.exit(f"bench: interrupted ({ex})")
