"""Checklist items 8, 67, 68, 69, 71, 72: settings from the environment and flags (docs/behaviour.md 1.3, 1.7, 2.1)."""
import os
import socket
import time

import pytest

from bb_http import request
from conftest import FIXTURES, children_of, free_port, listening_ports, run_cli

UUID_KEY = "12345678-9abc-DEF0-1234-56789abcdef0"


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("value,present", [("false", False), ("notgood", False), ("TRUE", True)])
def test_c8_server_version_header_switch(server, value, present):
    s = server.start("env_dump.py", env={"SERVER_VERSION_LOG_RESPONSE_ENABLED": value})
    for method, path in (("POST", "/score"), ("GET", "/"), ("GET", "/swagger.json")):
        r = request(s.port, method, path, body=b"x" if method == "POST" else None)
        assert r.status == 200, r
        if present:
            assert r.all("x-ms-server-version") == ["azmlinfsrv/1.5.1"], r
        else:
            assert not r.has("x-ms-server-version"), (value, r)
        assert r.has("x-request-id")  # the other family-A headers stay
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j["HTTP_X_MS_SERVER_VERSION"] == ("azmlinfsrv/1.5.1" if present else None), j
    if present:
        assert "Inferencing HTTP server version: azmlinfsrv/1.5.1" in s.stdout().splitlines()


def test_c67_separate_health_port(server):
    hp = free_port()
    s = server.start("echo_input.py", args=["--health_port", str(hp)], env={"SEPERATE_HEALTH_ENDPOINT": "true"})
    lines = s.stdout().splitlines()
    assert f"Health Port: {hp}" in lines, s.logs()
    assert f"Server Port: {s.port}" in lines, s.logs()
    assert f"Liveness Probe: GET   127.0.0.1:{hp}/" in lines, s.logs()
    assert f"Score:          POST  127.0.0.1:{s.port}/score" in lines, s.logs()
    r = request(hp, "GET", "/")
    assert r.status == 200 and r.body == b"Healthy", r
    # the same app on both listeners
    r = request(hp, "POST", "/score", body=b"via-health")
    assert r.status == 200 and r.json()["received"] == "via-health", r
    r = request(s.port, "GET", "/")
    assert r.status == 200 and r.body == b"Healthy", r
    assert listening_ports({s.pid} | children_of(s.pid)) == {s.port, hp}


def test_c67_health_port_default_5000(server):
    if not port_is_free(5000):
        pytest.skip("port 5000 is in use on this machine")
    s = server.start("echo_input.py", env={"SEPERATE_HEALTH_ENDPOINT": "true"})
    assert "Health Port: 5000" in s.stdout().splitlines(), s.logs()
    r = request(5000, "GET", "/")
    assert r.status == 200 and r.body == b"Healthy", r


def test_c67_no_separate_health_without_env(server):
    hp = free_port()
    s = server.start("echo_input.py", args=["--health_port", str(hp)])
    lines = s.stdout().splitlines()
    assert f"Health Port: {s.port}" in lines, s.logs()
    assert f"Liveness Probe: GET   127.0.0.1:{s.port}/" in lines, s.logs()
    assert listening_ports({s.pid} | children_of(s.pid)) == {s.port}
    # only the exact value "true" enables it
    s2 = server.start("echo_input.py", args=["--health_port", str(hp)], env={"SEPERATE_HEALTH_ENDPOINT": "True"})
    assert f"Health Port: {s2.port}" in s2.stdout().splitlines(), s2.logs()


def test_c68_server_port_env_ignored(server):
    if not port_is_free(5001):
        pytest.skip("port 5001 is in use on this machine")
    other = free_port()
    s = server.start("env_dump.py", add_port=False, port=5001,
                     env={"SERVER_PORT": str(other), "HEALTH_PORT": str(other)})
    lines = s.stdout().splitlines()
    assert "Server Port: 5001" in lines, s.logs()
    assert "Health Port: 5001" in lines, s.logs()
    j = request(5001, "POST", "/score", body=b"x").json()
    assert j["SERVER_PORT"] == "5001" and j["HEALTH_PORT"] == "5001", j
    assert listening_ports({s.pid} | children_of(s.pid)) == {5001}


def test_c69_worker_count_env(server, tmp_path):
    pid_file = str(tmp_path / "pids")
    s = server.start("pid_init.py", env={"WORKER_COUNT": "2", "WORKER_TIMEOUT": "20", "PID_FILE": pid_file})
    lines = s.stdout().splitlines()
    assert "Worker Count: 2" in lines, s.logs()
    assert "Worker Timeout (seconds): 20" in lines, s.logs()
    pids = set()
    for _ in range(100):
        s.wait_for_log(r"Worker with pid \d+ ready for serving traffic")
        with open(pid_file) as f:
            pids = {int(x) for x in f.read().split()}
        if len(pids) == 2 and s.count_log(r"Worker with pid \d+ ready for serving traffic") == 2:
            break
        time.sleep(0.05)
    assert len(pids) == 2, f"each of 2 workers runs init(): {pids}\n{s.logs()}"
    assert pids == s.workers(), (pids, s.workers())
    assert s.pid not in pids
    # the flag beats the env
    s2 = server.start("echo_input.py", args=["--worker_count", "1"], env={"WORKER_COUNT": "3"})
    assert "Worker Count: 1" in s2.stdout().splitlines(), s2.logs()
    assert len(s2.workers()) == 1


@pytest.mark.parametrize("args,env,needle", [
    (["--worker_count", "300"], None,
     "azmlinfsrv: error: argument --worker_count: invalid validate_worker_count value: '300' "
     "(expected an integer from 1 to 128"),
    ([], {"WORKER_COUNT": "300"},
     "The environment variable WORKER_COUNT='300' is not valid: it is the number of worker processes, and one "
     "server runs at most 128. Set it to a whole number from 1 to 128"),
])
def test_worker_count_past_the_limit_exits_1_at_start(args, env, needle):
    # 128: a reload runs the new generation beside the old one, in a table of 256 worker slots.
    rc, out, err, elapsed = run_cli(["--entry_script", os.path.join(FIXTURES, "echo_input.py")] + args, env=env)
    assert rc == 1, (rc, out, err)
    assert needle in out + err, out + err
    assert "Server Settings" not in out
    assert "No free worker slot" not in out + err
    assert elapsed < 5, elapsed


def test_c71_appinsights_valid_key(server):
    s = server.start("env_dump.py", args=["--appinsights_instrumentation_key", UUID_KEY])
    lines = s.stdout().splitlines()
    assert "Valid Application Insights instrumentation key provided." in lines, s.logs()
    assert "Application Insights Enabled: true" in lines, s.logs()
    assert "Application Insights Key: AppInsights key provided" in lines, s.logs()
    assert UUID_KEY not in s.stdout(), "the key is never printed"
    assert lines.index("Valid Application Insights instrumentation key provided.") < \
        lines.index("Azure ML Inferencing HTTP server v1.5.1"), "validation messages come before the banner"
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j["AML_APP_INSIGHTS_ENABLED"] == "true", j
    assert j["AML_APP_INSIGHTS_KEY"] == UUID_KEY, j


def test_c72_appinsights_invalid_key(server):
    s = server.start("env_dump.py", args=["--appinsights_instrumentation_key", "not-a-uuid"])
    lines = s.stdout().splitlines()
    assert "Invalid Application Insights instrumentation key provided." in lines, s.logs()
    assert "Application Insights has been disabled." in lines, s.logs()
    assert "Application Insights Enabled: false" in lines, s.logs()
    assert "Application Insights Key: AppInsights key provided" in lines, s.logs()
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j["AML_APP_INSIGHTS_ENABLED"] == "false", j


@pytest.mark.parametrize("env", [{"AML_APP_INSIGHTS_ENABLED": "asdf"},
                                 {"AML_APP_INSIGHTS_ENABLED": "True", "AML_APP_INSIGHTS_KEY": UUID_KEY},
                                 {"AML_APP_INSIGHTS_ENABLED": "true"}])
def test_c72_appinsights_enabled_forced_false(server, env):
    # enabled only for exactly "true" plus a UUID key; anything else is forced to "false"
    s = server.start("env_dump.py", env=env)
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j["AML_APP_INSIGHTS_ENABLED"] == "false", (env, j)
    assert "Application Insights Enabled: false" in s.stdout().splitlines(), s.logs()


def test_c72_appinsights_env_enabled_with_key(server):
    s = server.start("env_dump.py", env={"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": UUID_KEY})
    assert "Valid Application Insights instrumentation key provided." in s.stdout().splitlines(), s.logs()
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j["AML_APP_INSIGHTS_ENABLED"] == "true", j
