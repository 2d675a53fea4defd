"""Shared machinery for the black-box tests: start the real azmlinfsrv binary,
talk to it over sockets, read its logs, and always stop it by its own pid."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bb_http  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
SERVER_VERSION = "1.5.1"

# Environment variables the server reads; a test environment must not leak them in.
_SCRUB_PREFIXES = ("AML_", "AZUREML_", "APP_INSIGHTS_")
_SCRUB = {
    "SERVER_PORT", "HEALTH_PORT", "WORKER_COUNT", "WORKER_TIMEOUT", "WORKER_PRELOAD",
    "SEPERATE_HEALTH_ENDPOINT", "SERVER_VERSION_LOG_RESPONSE_ENABLED", "HTTP_X_MS_SERVER_VERSION",
    "SCORING_TIMEOUT_MS", "SERVICE_NAME", "WORKSPACE_NAME", "SERVICE_PATH_PREFIX", "SERVICE_VERSION",
    "TRANSPORT_PROTOCOL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP",
    "LIMIT_REQUEST_LINE", "LIMIT_REQUEST_FIELD_SIZE", "LIMIT_REQUEST_FIELDS", "LIMIT_REQUEST_BODY",
    "REQUEST_HEAD_TIMEOUT_MS", "REQUEST_BODY_TIMEOUT_MS", "KEEP_ALIVE_TIMEOUT_MS",
    "AZMLINFSRV_METRICS_PORT",
}


def binary_path():
    return os.environ.get("AZMLINFSRV") or os.path.join(REPO, "build", "azmlinfsrv")


def require_binary():
    path = binary_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"azmlinfsrv binary not found or not executable at {path!r}. "
            "Build it into <repo>/build (meson/ninja) or set AZMLINFSRV=/path/to/azmlinfsrv.",
            pytrace=False,
        )
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def base_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)}
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def children_of(pid):
    """Direct children of pid (union over all its threads)."""
    kids = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


def listening_ports(pids):
    """TCP ports in LISTEN state whose sockets are held by any of pids."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                m = re.match(r"socket:\[(\d+)\]", target)
                if m:
                    inodes.add(m.group(1))
        except OSError:
            pass
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


class Server:
    def __init__(self, argv, env, cwd, logdir, port, script, combined_output=False):
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.port = port
        self.script = script
        self.url = f"http://127.0.0.1:{port}" if port else None
        self.stdout_path = os.path.join(logdir, "stdout.log")
        # combined_output: stderr into the stdout file, as a terminal or a container log shows them
        self.stderr_path = self.stdout_path if combined_output else os.path.join(logdir, "stderr.log")
        self._out = open(self.stdout_path, "wb")
        self._err = self._out if combined_output else open(self.stderr_path, "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=self._err, start_new_session=True,
        )
        self.pid = self.proc.pid
        self._stopped = False

    # -- logs ------------------------------------------------------------
    def _read(self, path):
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        return self._read(self.stdout_path)

    def stderr(self):
        return self._read(self.stderr_path)

    def output(self):
        return self.stdout() + self.stderr()

    def logs(self):
        return f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}\n--- end ---"

    def mark(self, stream="stdout"):
        """Current length of a stream's text, to pass as wait_for_log(since=...) later."""
        return len({"stdout": self.stdout, "stderr": self.stderr, "both": self.output}[stream]())

    def wait_for_log(self, pattern, timeout=5.0, stream="stdout", flags=re.M, since=0):
        """Wait until regex pattern matches the chosen stream ('stdout', 'stderr', 'both'), looking only
        at the text after offset `since` (see mark()); return the match. Fails the test with the logs
        if it never appears."""
        rx = re.compile(pattern, flags)
        deadline = time.monotonic() + timeout
        while True:
            text = {"stdout": self.stdout, "stderr": self.stderr, "both": self.output}[stream]()[since:]
            m = rx.search(text)
            if m:
                return m
            if time.monotonic() > deadline:
                pytest.fail(f"pattern {pattern!r} not found in {stream} within {timeout}s\n{self.logs()}",
                            pytrace=False)
            time.sleep(0.05)

    def count_log(self, pattern, stream="stdout", flags=re.M):
        text = {"stdout": self.stdout, "stderr": self.stderr, "both": self.output}[stream]()
        return len(re.findall(pattern, text, flags))

    # -- lifecycle -------------------------------------------------------
    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with code {self.proc.returncode} before becoming ready\n{self.logs()}",
                            pytrace=False)
            try:
                r = bb_http.request(self.port, "GET", "/", timeout=max(0.2, deadline - time.monotonic()))
                if r.status == 200:
                    return
                last = r
            except (OSError, bb_http.ConnectionClosed) as e:
                last = e
            time.sleep(0.05)
        pytest.fail(f"server not ready within {timeout}s (last: {last!r})\n{self.logs()}", pytrace=False)

    def wait_exit(self, timeout=5.0):
        """Wait for the process to exit by itself; returns the exit code (fails on timeout)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server did not exit within {timeout}s\n{self.logs()}", pytrace=False)

    def workers(self):
        return children_of(self.pid)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop by own pid: sig, wait up to timeout, then SIGKILL; finally kill its process group."""
        if self._stopped:
            return self.proc.returncode
        self._stopped = True
        rc = None
        try:
            if self.proc.poll() is None:
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    rc = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    rc = self.proc.wait(timeout=5)
            else:
                rc = self.proc.returncode
        finally:
            # safety net: the process group whose id is the server pid (workers, helpers)
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._out.close()
            self._err.close()
        return rc


class ServerFactory:
    def __init__(self, tmpdir_factory_fn):
        self._mkdtemp = tmpdir_factory_fn
        self.servers = []

    def start(self, script=None, args=(), env=None, cwd=None, expect_ready=True, port=None,
              add_port=True, add_entry_script=True, ready_timeout=10.0, binary=None, combined_output=False):
        """Start azmlinfsrv.

        script: a fixture file name (tests/fixtures/NAME), a path, or script text
                (anything containing a newline is written to <tmp>/score.py).
        args:   extra CLI args. --entry_script <abs path> and --port <free port> are added
                unless add_entry_script/add_port is False.
        cwd:    defaults to a fresh temporary directory.
        """
        binary = binary or require_binary()
        workdir = self._mkdtemp()
        logdir = os.path.join(workdir, "_logs")
        os.makedirs(logdir, exist_ok=True)
        if cwd is None:
            cwd = os.path.join(workdir, "cwd")
            os.makedirs(cwd, exist_ok=True)
        script_path = None
        if script is not None:
            if "\n" in script:
                script_path = os.path.join(workdir, "score.py")
                with open(script_path, "w") as f:
                    f.write(script)
            elif os.path.isabs(script):
                script_path = script
            elif os.path.exists(fixture_path(script)):
                script_path = fixture_path(script)
            else:
                script_path = os.path.abspath(os.path.join(cwd, script))
            script_path = os.path.realpath(script_path)
        argv = [binary]
        if script_path is not None and add_entry_script:
            argv += ["--entry_script", script_path]
        if add_port:
            if port is None:
                port = free_port()
            argv += ["--port", str(port)]
        argv += [str(a) for a in args]
        srv = Server(argv, base_env(env), cwd, logdir, port, script_path, combined_output)
        self.servers.append(srv)
        if expect_ready:
            srv.wait_ready(ready_timeout)
        return srv

    def stop_all(self):
        for s in self.servers:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass


def ready_pids(s):
    return [int(p) for p in re.findall(r"Worker with pid (\d+) ready for serving traffic", s.stdout())]


def wait_workers(s, n, timeout=10.0, exclude=()):
    """Waits until n children of the arbiter, none in exclude, have logged that they are ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = s.workers() - set(exclude)
        if len(kids) == n and kids <= set(ready_pids(s)):
            return kids
        time.sleep(0.05)
    raise AssertionError(f"expected {n} ready workers, have {s.workers()}\n{s.logs()}")


@pytest.fixture
def server(tmp_path_factory):
    """Function-scoped factory: server.start(...) -> Server; every server is stopped after the test."""
    f = ServerFactory(lambda: str(tmp_path_factory.mktemp("srv")))
    yield f
    f.stop_all()


@pytest.fixture(scope="session")
def session_servers(tmp_path_factory):
    f = ServerFactory(lambda: str(tmp_path_factory.mktemp("ssrv")))
    yield f
    f.stop_all()


@pytest.fixture(scope="session")
def echo_server(session_servers):
    """Shared server running tests/fixtures/echo_input.py (run returns what it received)."""
    return session_servers.start("echo_input.py")


@pytest.fixture(scope="session")
def returns_server(session_servers):
    """Shared server running tests/fixtures/returns.py (run returns eval(input))."""
    return session_servers.start("returns.py")


@pytest.fixture(scope="session")
def responses_server(session_servers):
    """Shared server running tests/fixtures/responses.py with SCORING_TIMEOUT_MS=500: the POST body
    "<case>[:<arg>]" selects the AMLResponse / value run() returns."""
    return session_servers.start("responses.py", env={"SCORING_TIMEOUT_MS": "500"})


@pytest.fixture
def http():
    return bb_http


def run_cli(args, env=None, cwd=None, timeout=10.0):
    """Run the binary expecting it to exit by itself (CLI errors etc.).
    Returns (returncode, stdout, stderr, elapsed)."""
    binary = require_binary()
    with tempfile.TemporaryDirectory() as d:
        out_p, err_p = os.path.join(d, "out"), os.path.join(d, "err")
        with open(out_p, "wb") as out, open(err_p, "wb") as err:
            t0 = time.monotonic()
            p = subprocess.Popen([binary] + list(args), env=base_env(env), cwd=cwd or d,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                rc = None
            finally:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            elapsed = time.monotonic() - t0
        with open(out_p, "rb") as f:
            so = f.read().decode("utf-8", "replace")
        with open(err_p, "rb") as f:
            se = f.read().decode("utf-8", "replace")
    if rc is None:
        pytest.fail(f"{args!r} did not exit within {timeout}s\nstdout:\n{so}\nstderr:\n{se}", pytrace=False)
    return rc, so, se, elapsed
