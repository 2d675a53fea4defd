"""The differential harness: start the reference and ours on the same script, send the same requests
with real clients, and compare what a client, a script and a log reader can see.

A case is a folder under tests/differential/corpus/ holding the script (and anything beside it: a
model folder, config.json, swagger files) and case.json:

    {"script": "score.py", "args": [...], "env": {...}, "boot": "serve" | "exit",
     "requests": [{"method": "POST", "path": "/score", "headers": [["Content-Type", "application/json"]],
                   "body": "...", "body_b64": "...", "json": ..., "chunked": true, "http10": true,
                   "client": "raw" | "http.client" | "curl", "raw": "exact bytes, \\r\\n escaped",
                   "accept": ["difference-id", ...]}],
     "log": true | "prints" | false, "accept": ["difference-id", ...]}

Each exchange is reduced to a normalised record (status, reason, headers, body, framing), and the
server's log to normalised records of the loggers scripts and log readers see. The goldens in
tests/golden/ are the reference's records; tests/blackbox/test_golden.py replays them against our binary.

Deliberate differences are the entries of DIFFERENCES, each with its reason and the doc that says so: a
normalisation that applies everywhere (`always`) or a field a case accepts by id.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
GOLDEN = os.path.join(REPO, "tests", "golden")
STAND_IN_SCHEMA = os.path.join(REPO, "tests", "fixtures", "pylib")
REFERENCE_DIR = os.environ.get("AZMLINFSRV_REFERENCE", "/tmp/azmlinfsrv-reference")

# Each deliberate difference: why, where the docs say so, and what it covers. `always` ones are
# normalised away on every exchange; the others only where a case or request lists the id in `accept`.
DIFFERENCES = {
    "server-header": dict(always=True, covers="header server",
                          why="Server names this server, not gunicorn", doc="docs/differences.md"),
    "keep-alive": dict(always=True, covers="header connection, keep-alive",
                       why="HTTP/1.1 keep-alive; the reference closes every connection",
                       doc="docs/differences.md (connections)"),
    "version": dict(always=True, covers="x-ms-server-version value, version in bodies and logs",
                    why="the reference runnable here is 1.0.0; its HTTP behaviour is 1.5.1's, our version",
                    doc="tests/differential/README.md"),
    "flask-one": dict(always=True, covers="the reference runs with AML_FLASK_ONE_COMPATIBILITY=false",
                      why="1.0.0 patches Flask so request.json is None for a non-JSON body; 1.5.1 (and ours) "
                          "raise BadRequest", doc="tests/differential/README.md"),
    "traceback-frames": dict(always=True, covers="the middle lines of a logged traceback; a line naming the "
                                                 "failed file where the reference's record starts with the "
                                                 "bare 'Traceback (most recent call last):'",
                             why="our tracebacks show the script's frames only, and say which file failed; the "
                                 "last line, which log alerts key on, is the reference's",
                             doc="docs/differences.md"),
    "json-errors": dict(always=False, covers="status reason, content-type and body of an error the server makes",
                        why="errors the server makes itself are JSON, not gunicorn's HTML",
                        doc="docs/differences.md (errors the server makes itself)"),
    "help-text": dict(always=False, covers="the usage and help printed on an argument error",
                      why="our flags are added and the help reworded; an argument error says the expected range",
                      doc="docs/differences.md (-h / --help, argument errors)"),
    "header-limit-431": dict(always=False, covers="status and reason",
                             why="431 for header limits where gunicorn 20.1 (1.0.0) says 400",
                             doc="tests/differential/README.md"),
}

LOG_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ([DIWECF]) \[(\d+)\] (\S+) - (.*)$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCESS_TIME = re.compile(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]")
MILLIS = re.compile(r"\b\d+(\.\d+)?ms\b")
VERSION = re.compile(r"(?<=azmlinfsrv/)\d+\.\d+\.\d+|(?<=HTTP server v)\d+\.\d+\.\d+")
HEX_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
# The readiness probe: marked, so that its access lines (as many as it took) leave the comparison.
PROBE_TARGET = "/?differential-harness-probe"
PROBE = f"GET {PROBE_TARGET} HTTP/1.0\r\n\r\n".encode()


# ---------------------------------------------------------------------------------------------------
# Servers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reference_binary():
    return os.path.join(REFERENCE_DIR, "venv", "bin", "azmlinfsrv")


def reference_available():
    return os.access(reference_binary(), os.X_OK)


def ours_binary():
    return os.environ.get("AZMLINFSRV") or os.path.join(REPO, "build", "azmlinfsrv")


def clean_env(extra):
    scrub = ("AML_", "AZUREML_", "APP_INSIGHTS_")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(scrub) and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                                                     "WORKER_COUNT", "WORKER_TIMEOUT", "SCORING_TIMEOUT_MS")}
    env.update(extra or {})
    return env


class Running:
    """One server on one case: its process group, port, log file, and its exit code once stopped."""

    def __init__(self, kind, case, workdir, schema):
        self.kind = kind
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir + ".log"  # beside the folder: a script that lists its folder sees its own files
        argv = [reference_binary() if kind == "reference" else ours_binary(), "--port", str(self.port)]
        if case.get("script", "score.py"):
            argv += ["--entry_script", case.get("script", "score.py")]
        argv += [a.replace("{dir}", workdir) for a in case.get("args", [])]
        env = clean_env({k: v.replace("{dir}", workdir) for k, v in case.get("env", {}).items()})
        if kind == "reference":
            env.setdefault("AML_FLASK_ONE_COMPATIBILITY", "false")  # DIFFERENCES["flask-one"]
        if kind == "ours":
            paths = [schema] if schema else []
            if case.get("env", {}).get("PYTHONPATH"):
                paths.append(env["PYTHONPATH"])
            env["PYTHONPATH"] = os.pathsep.join(paths)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.exit_code = None

    def wait_ready(self, timeout=30):
        """True once GET / answers; False when the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(PROBE)
                    if s.recv(64)[8:13] == b" 200 ":
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.kind} did not answer GET / on port {self.port} within {timeout} s; "
                           f"its log: {self.log_path}")

    def wait_exit(self, timeout=30):
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        return self.exit_code

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.exit_code is None:
            self.exit_code = self.proc.returncode
        try:  # a worker that outlived its master would answer the next case
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------
# Clients

def request_bytes(req):
    """The exact bytes a raw client sends for a request spec."""
    if "raw" in req:
        return req["raw"].encode("latin-1")
    body = request_body(req)
    version = "HTTP/1.0" if req.get("http10") else "HTTP/1.1"
    lines = [f"{req.get('method', 'GET')} {req.get('path', '/')} {version}"]
    names = {n.lower() for n, _ in request_headers(req)}
    if "host" not in names and not req.get("no_host"):
        lines.append("Host: 127.0.0.1")
    lines += [f"{n}: {v}" for n, v in request_headers(req)]
    if req.get("chunked"):
        lines.append("Transfer-Encoding: chunked")
        size = req.get("chunk_size", 7)
        pieces = [body[i:i + size] for i in range(0, len(body), size)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        if body or req.get("method", "GET") in ("POST", "PUT", "PATCH") and "content-length" not in names:
            if "content-length" not in names:
                lines.append(f"Content-Length: {len(body)}")
        framed = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + framed


def request_headers(req):
    headers = [tuple(h) for h in req.get("headers", [])]
    if "json" in req and not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return headers


def request_body(req):
    if "json" in req:
        return json.dumps(req["json"]).encode()
    if "body_b64" in req:
        return base64.b64decode(req["body_b64"])
    return req.get("body", "").encode("utf-8")


def read_response(sock, method):
    """Reads responses until a final one (1xx are kept as interim). Returns the records."""
    buf = b""
    records = []

    def fill():
        nonlocal buf
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk

    while True:
        try:
            while b"\r\n\r\n" not in buf:
                fill()
        except EOFError:
            records.append({"eof": True, "partial": buf.decode("latin-1")})
            return records
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status_text, _, reason = rest.partition(" ")
        status = int(status_text)
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        lower = {n.lower(): v for n, v in headers}
        record = {"version": version, "status": status, "reason": reason, "headers": headers}
        if 100 <= status < 200:
            record["body"] = b""
            record["framing"] = "none"
            records.append(record)
            continue
        if method == "HEAD" or status in (204, 304):
            record["body"], record["framing"] = b"", "none"
        elif "chunked" in lower.get("transfer-encoding", "").lower():
            body = b""
            try:
                while True:
                    while b"\r\n" not in buf:
                        fill()
                    size_line, buf = buf.split(b"\r\n", 1)
                    size = int(size_line.split(b";")[0], 16)
                    while len(buf) < size + 2:
                        fill()
                    body += buf[:size]
                    buf = buf[size + 2:]
                    if size == 0:
                        break
                record["framing"] = "chunked"
            except EOFError:
                record["framing"] = "chunked-cut"
            record["body"] = body
        elif "content-length" in lower:
            n = int(lower["content-length"])
            try:
                while len(buf) < n:
                    fill()
                record["framing"] = "length"
            except EOFError:
                record["framing"] = "length-cut"
            record["body"], buf = buf[:n], buf[n:]
        else:
            try:
                while True:
                    fill()
            except (EOFError, ConnectionResetError):
                pass
            record["body"], buf = buf, b""
            record["framing"] = "close"
        records.append(record)
        return records


def exchange_raw(port, req):
    with socket.create_connection(("127.0.0.1", port), timeout=req.get("timeout", 30)) as sock:
        data = request_bytes(req)
        if req.get("expect_continue"):
            head, _, body = data.partition(b"\r\n\r\n")
            sock.sendall(head + b"\r\n\r\n")
            time.sleep(0.2)
            sock.sendall(body)
        else:
            sock.sendall(data)
        try:
            return read_response(sock, req.get("method", "GET") if "raw" not in req else
                                 req["raw"].split(" ", 1)[0])
        except (ConnectionResetError, socket.timeout) as e:
            return [{"eof": True, "error": type(e).__name__}]


def exchange_http_client(port, req):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=req.get("timeout", 30))
    try:
        conn.request(req.get("method", "GET"), req.get("path", "/"), body=request_body(req) or None,
                     headers=dict(request_headers(req)))
        resp = conn.getresponse()
        body = resp.read()
        te = (resp.getheader("transfer-encoding") or "").lower()
        return [{"version": "HTTP/1.1" if resp.version == 11 else "HTTP/1.0", "status": resp.status,
                 "reason": resp.reason, "headers": resp.getheaders(), "body": body,
                 "framing": "chunked" if "chunked" in te else
                            "none" if req.get("method") == "HEAD" or resp.status in (204, 304) else
                            "length" if resp.getheader("content-length") is not None else "close"}]
    finally:
        conn.close()


def exchange_curl(port, req, workdir):
    head_file = os.path.join(workdir, "curl.head")
    body_file = os.path.join(workdir, "curl.body")
    data_file = os.path.join(workdir, "curl.data")
    argv = ["curl", "-sS", "-D", head_file, "-o", body_file, "-X", req.get("method", "GET")]
    if req.get("method") == "HEAD":
        argv[-2:] = ["-I"]
    for n, v in request_headers(req):
        argv += ["-H", f"{n}: {v}"]
    body = request_body(req)
    if body:
        with open(data_file, "wb") as f:
            f.write(body)
        argv += ["-T" if req.get("chunked") else "--data-binary",
                 "-" if req.get("chunked") else "@" + data_file]
        if req.get("chunked") and req.get("method", "PUT") != "PUT":
            argv += ["-X", req["method"]]
    if req.get("http10"):
        argv.append("--http1.0")
    argv.append(f"http://127.0.0.1:{port}{req.get('path', '/')}")
    stdin = open(data_file, "rb") if req.get("chunked") and body else subprocess.DEVNULL
    try:
        subprocess.run(argv, stdin=stdin, timeout=req.get("timeout", 30), check=False)
    finally:
        if stdin is not subprocess.DEVNULL:
            stdin.close()
    with open(head_file, "rb") as f:
        blocks = [b for b in f.read().decode("latin-1").split("\r\n\r\n") if b.strip()]
    records = []
    for block in blocks:
        lines = block.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status, _, reason = rest.partition(" ")
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        records.append({"version": version, "status": int(status), "reason": reason, "headers": headers,
                        "body": b"", "framing": "curl"})
    if records and req.get("method") != "HEAD":  # curl -I writes the head to -o too
        with open(body_file, "rb") as f:
            records[-1]["body"] = f.read()
    else:
        records.append({"eof": True})
    return records


def exchange(port, req, workdir):
    client = req.get("client", "raw")
    if client == "http.client":
        return exchange_http_client(port, req)
    if client == "curl":
        return exchange_curl(port, req, workdir)
    return exchange_raw(port, req)


# ---------------------------------------------------------------------------------------------------
# Normalising

def normalise_text(text, ctx):
    text = text.replace(ctx["workdir"], "<dir>")
    text = text.replace(str(ctx["port"]), "<port>")
    for pid in ctx.get("pids", ()):
        text = re.sub(rf"\b{pid}\b", "<pid>", text)
    text = VERSION.sub("<version>", text)
    text = HEX_ADDRESS.sub("0x<addr>", text)
    return text


def normalise_response(records, req, ctx):
    out = []
    sent = {n.lower(): v for n, v in request_headers(req)}
    for r in records:
        if r.get("eof"):
            out.append({"eof": True})
            continue
        headers = []
        for name, value in r["headers"]:
            key = name.lower()
            if key in ("server", "connection", "keep-alive"):
                continue
            if key == "date":
                value = "<date>"
            elif key == "x-ms-run-fn-exec-ms":
                value = "<ms>" if re.fullmatch(r"\d+(\.\d+)?", value) else value
            elif key in ("x-request-id", "x-ms-request-id", "x-ms-client-request-id"):
                if value not in sent.values() and UUID.match(value):
                    value = "<uuid>"
            elif key == "allow":  # Werkzeug builds it from a set: its order changes with the hash seed
                value = ", ".join(sorted(v.strip() for v in value.split(",")))
            elif key == "x-ms-server-version":
                value = VERSION.sub("<version>", value)
            headers.append([key, normalise_text(value, ctx)])
        headers.sort()
        body = r["body"]
        try:
            text = body.decode("utf-8")
            body_record = {"body": normalise_text(text, ctx)}
        except UnicodeDecodeError:
            body_record = {"body_b64": base64.b64encode(body).decode()}
        out.append({"version": r.get("version", "HTTP/1.1"), "status": r["status"], "reason": r["reason"],
                    "headers": headers, "framing": r["framing"], **body_record})
    return out


def log_records(text, ctx):
    """The log as (records, prints). Records: "level logger - first line[ ... last line]" of the loggers
    a log reader sees: the server's own (azmlinfsrv*) and the access log (gunicorn's master lines differ
    on purpose); an error record keeps the last line of its traceback. Prints: the lines outside records
    (the banner, the model-directory hint), blank lines dropped."""
    records = []
    prints = []
    current = None
    for line in text.splitlines():
        m = LOG_RECORD.match(line)
        if m:
            current = {"level": m.group(2), "logger": m.group(4), "lines": [m.group(5)]}
            records.append(current)
            ctx.setdefault("pids", set()).add(m.group(3))
        elif current is not None and current["level"] in "EC":
            current["lines"].append(line)
        elif line.strip():
            prints.append(line)
    out = []
    for r in records:
        logger = r["logger"]
        if logger == "gunicorn.access":
            logger = "access"
        elif not logger.startswith("azmlinfsrv"):
            continue
        first = r["lines"][0]
        if first.startswith("Loaded logging config from") or PROBE_TARGET in first:
            continue
        rest = [x for x in r["lines"][1:] if x.strip()]
        text = first if not rest else first + " ... " + rest[-1]
        text = ACCESS_TIME.sub("[<time>]", text)
        text = MILLIS.sub("<ms>ms", text)
        out.append(f"{r['level']} {logger} - {normalise_text(text, ctx)}")
    return out, [normalise_text(p, ctx) for p in prints]


# ---------------------------------------------------------------------------------------------------
# Running a case

def load_case(name):
    folder = os.path.join(CORPUS, name)
    with open(os.path.join(folder, "case.json")) as f:
        case = json.load(f)
    case["name"] = name
    case["folder"] = folder
    return case


def case_names():
    return sorted(d for d in os.listdir(CORPUS) if os.path.isfile(os.path.join(CORPUS, d, "case.json")))


def run_case(case, kind, schema=None):
    """Starts `kind` ("reference" or "ours") on the case, sends its requests, stops it; returns the
    normalised result: exchanges, log records, exit code."""
    workdir = tempfile.mkdtemp(prefix="diff-")  # one length for both: bodies and logs that name it compare
    try:
        shutil.copytree(case["folder"], workdir, dirs_exist_ok=True)
        server = Running(kind, case, workdir, schema)
        ctx = {"workdir": workdir, "port": server.port}
        result = {"exchanges": []}
        try:
            ready = server.wait_ready()
            if ready:
                for req in case.get("requests", []):
                    records = exchange(server.port, req, workdir)
                    result["exchanges"].append(normalise_response(records, req, ctx))
                    time.sleep(req.get("pause", 0))
                time.sleep(case.get("settle", 0.3))  # the access line follows the answer
            else:
                result["exit"] = server.exit_code
        finally:
            server.stop()
        if case.get("boot", "serve") == "exit" and "exit" not in result:
            result["exit"] = server.wait_exit()
        log = server.log()
        result["log"], result["prints"] = log_records(log, ctx)
        result["raw_log"] = log
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(workdir + ".log"):
            os.unlink(workdir + ".log")


def accepted(case, index):
    ids = set(case.get("accept", []))
    if index is not None and index < len(case.get("requests", [])):
        ids |= set(case["requests"][index].get("accept", []))
    unknown = ids - DIFFERENCES.keys()
    if unknown:
        raise KeyError(f"case {case['name']}: accept lists {sorted(unknown)}, which DIFFERENCES in "
                       f"tests/differential/harness.py does not define; add them there with their reason")
    return ids


def compare_exchange(expected, actual, ids):
    """Differences between two normalised exchanges, less what the accepted ids cover."""
    problems = []
    if len(expected) != len(actual):
        return [f"{len(expected)} response(s) expected, got {len(actual)}: {actual}"]
    for e, a in zip(expected, actual):
        if e.get("eof") or a.get("eof"):
            if e.get("eof") != a.get("eof"):
                problems.append(f"expected {e}, got {a}")
            continue
        error_json = "json-errors" in ids and e["status"] >= 400
        if e.get("version") != a.get("version") and "version" in e:
            problems.append(f"status line {e['version']} expected, got {a.get('version')}")
        if e["status"] != a["status"] and not ("header-limit-431" in ids and a["status"] == 431):
            problems.append(f"status {e['status']} expected, got {a['status']}")
        if e["reason"] != a["reason"] and not error_json and "header-limit-431" not in ids:
            problems.append(f"reason {e['reason']!r} expected, got {a['reason']!r}")
        skip = {"content-type", "content-length", "date"} if error_json else set()
        eh = [h for h in e["headers"] if h[0] not in skip]
        ah = [h for h in a["headers"] if h[0] not in skip]
        if eh != ah:
            missing = [h for h in eh if h not in ah]
            extra = [h for h in ah if h not in eh]
            problems.append(f"headers: missing {missing}, unexpected {extra}")
        if not error_json:
            for key in ("body", "body_b64"):
                if e.get(key) != a.get(key):
                    problems.append(f"{key}: expected {e.get(key)!r}, got {a.get(key)!r}")
            if e["framing"] != a["framing"]:
                problems.append(f"framing {e['framing']} expected, got {a['framing']}")
    return problems


def same_record(expected, actual):
    """Equal, or both a traceback record of the same level and logger with the same last line, where the
    reference's starts with the bare traceback line (DIFFERENCES["traceback-frames"])."""
    if expected == actual:
        return True
    if " ... " not in expected:
        return False
    e_first, e_last = expected.split(" ... ", 1)
    if not e_first.endswith(" - Traceback (most recent call last):"):
        return False
    level_logger = e_first.split(" - ", 1)[0]
    if " ... " not in actual:  # no frames at all (none of them the script's): the last line alone
        return actual == f"{level_logger} - {e_last}"
    a_first, a_last = actual.split(" ... ", 1)
    return e_last == a_last and a_first.split(" - ", 1)[0] == level_logger


def compare_logs(expected, actual):
    """Every expected record appears in ours, in order (ours may say more)."""
    problems = []
    position = 0
    for line in expected:
        found = next((i for i in range(position, len(actual)) if same_record(line, actual[i])), None)
        if found is None:
            problems.append(f"log line missing: {line}")
        else:
            position = found + 1
    return problems


def compare(case, expected, actual):
    problems = []
    if expected.get("exit") != actual.get("exit"):
        problems.append(f"exit code {expected.get('exit')} expected, got {actual.get('exit')}")
    for i, (e, a) in enumerate(zip(expected["exchanges"], actual["exchanges"])):
        problems += [f"request {i}: {p}" for p in compare_exchange(e, a, accepted(case, i))]
    if len(expected["exchanges"]) != len(actual["exchanges"]):
        problems.append(f"{len(expected['exchanges'])} exchanges expected, got {len(actual['exchanges'])}")
    # "log": true compares log records and printed lines; "prints" the printed lines only (several
    # workers booting at once write their records in no fixed order); false neither.
    if case.get("log", True) is True:
        problems += compare_logs(expected["log"], actual["log"])
    if case.get("log", True) in (True, "prints"):
        problems += [p.replace("log line", "printed line") for p in
                     compare_logs(expected.get("prints", []), actual.get("prints", []))]
    return problems


def golden_path(name):
    return os.path.join(GOLDEN, f"{name}.json")


def write_golden(case, result):
    os.makedirs(GOLDEN, exist_ok=True)
    record = {"case": case["name"], "about": case.get("about", ""), "exit": result.get("exit"),
              "exchanges": result["exchanges"], "log": result["log"], "prints": result["prints"]}
    with open(golden_path(case["name"]), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")


def read_golden(name):
    with open(golden_path(name)) as f:
        return json.load(f)
