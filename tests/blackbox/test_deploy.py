"""deploy/ (issue 6): the container entrypoint and the Kubernetes manifests' promises, tested here
since neither docker nor a cluster is available."""
import os
import signal
import subprocess
import time

import pytest

from bb_http import request
from conftest import REPO, base_env, binary_path, free_port

ENTRYPOINT = os.path.join(REPO, "deploy", "entrypoint.sh")
SCRIPT = "def init():\n    pass\n\ndef run(data):\n    return {'got': data}\n"


def start(args, env, cwd):
    full_env = base_env(env)
    full_env["AZMLINFSRV"] = binary_path()
    return subprocess.Popen([ENTRYPOINT] + args, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def wait_ready(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if request(port, "GET", "/", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("not ready")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def test_entrypoint_execs_the_server_so_sigterm_reaches_it(tmp_path):
    (tmp_path / "score.py").write_text(SCRIPT)
    port = free_port()
    proc = start(["--entry_script", str(tmp_path / "score.py"), "--port", str(port)], {}, str(tmp_path))
    try:
        wait_ready(port, proc)
        # exec, not a child: the pid the orchestrator signals is the server's arbiter itself
        assert os.path.realpath(f"/proc/{proc.pid}/exe") == os.path.realpath(binary_path())
        assert request(port, "POST", "/score", headers={"Content-Type": "text/plain"}, body="x").json() == {"got": "x"}
    finally:
        code = stop(proc)
    assert code == 0


def test_entrypoint_without_arguments_uses_the_azure_ml_layout(tmp_path):
    app = tmp_path / "azureml-app"
    (app / "model").mkdir(parents=True)
    (app / "score.py").write_text(
        "import os\ndef init():\n    pass\ndef run(data):\n"
        "    return [os.environ['AZUREML_MODEL_DIR'], os.environ['AML_APP_ROOT'], os.getcwd()]\n")
    port = free_port()
    proc = start([], {"AML_APP_ROOT": str(app), "AZUREML_MODEL_DIR": str(app / "model"), "PORT": str(port)},
                 str(tmp_path))
    try:
        wait_ready(port, proc)
        got = request(port, "POST", "/score", headers={"Content-Type": "text/plain"}, body="x").json()
        assert got == [str(app / "model"), str(app), str(app)]
    finally:
        assert stop(proc) == 0


def test_entrypoint_without_a_script_says_where_it_looked(tmp_path):
    proc = start([], {"AML_APP_ROOT": str(tmp_path), "PORT": str(free_port())}, str(tmp_path))
    assert proc.wait(10) == 2
    assert f"no scoring script at {tmp_path}/score.py" in proc.stderr.read().decode()


def test_kubernetes_manifests_match_the_server():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(REPO, "deploy", "kubernetes", "deployment.yaml")) as f:
        deployment = yaml.safe_load(f)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    assert ports["http"] == 5001  # the server's default scoring port (no --port in args)
    assert "--port" not in args
    assert ports["metrics"] == int(args[args.index("--metrics_port") + 1])
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    graceful_default = 30  # README: --graceful_timeout default
    assert pod["terminationGracePeriodSeconds"] > graceful_default + pause
    assert pod["securityContext"]["runAsNonRoot"] is True
    with open(os.path.join(REPO, "deploy", "kubernetes", "service.yaml")) as f:
        service = yaml.safe_load(f)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    with open(os.path.join(REPO, "deploy", "kubernetes", "hpa.yaml")) as f:
        hpa = yaml.safe_load(f)
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_dockerfile_runs_as_non_root_through_the_entrypoint():
    with open(os.path.join(REPO, "deploy", "Dockerfile")) as f:
        text = f.read()
    assert "\nUSER 10001\n" in text
    assert 'ENTRYPOINT ["/usr/local/bin/azmlinfsrv-entrypoint"]' in text  # exec form: PID 1 gets SIGTERM
    assert "COPY deploy/entrypoint.sh /usr/local/bin/azmlinfsrv-entrypoint" in text
