"""AZUREML_DEBUG_PORT (docs/behaviour.md 1.4, issue 6): the worker connects to a waiting debug adapter."""
import socket
import time

import pytest

pytest.importorskip("debugpy", reason="python3-debugpy is not installed (.ci/install-deps installs it)")

SCRIPT = "def init():\n    pass\n\ndef run(data):\n    return data\n"


def test_worker_connects_to_the_debug_adapter_on_the_port(server):
    adapter = socket.socket()
    adapter.bind(("127.0.0.1", 0))
    adapter.listen(1)
    adapter.settimeout(20)
    port = adapter.getsockname()[1]
    s = server.start(SCRIPT, env={"AZUREML_DEBUG_PORT": str(port)}, expect_ready=False)
    try:
        conn, peer = adapter.accept()  # the stand-in for VS Code's debug adapter: the worker dialled it
        assert peer[0] == "127.0.0.1"
        s.wait_for_log(r"^!! Starting the inference server in DEBUGGING mode because AZUREML_DEBUG_PORT is set\.$")
        s.wait_for_log(rf"^\*\* Connecting to debugger at port {port}\.\.\.$")
        # The worker waits for the debugger before loading the script: not ready while nobody attaches.
        # (An absence: give the worker a moment in which it would have printed otherwise.)
        time.sleep(1.0)
        assert "Found user script" not in s.stdout()
        assert "debugger miss breakpoints" not in s.output()  # frozen modules are off when debugging
        conn.close()
    finally:
        adapter.close()
        s.stop()


def test_no_debugger_listening_says_how_to_start_one(server):
    # Issue 15 (7): nobody listens on the port. One message says what to do, instead of debugpy's and
    # our tracebacks of the refused connection; the server stops once (exit 3), not in a crash loop.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # bound, never listened: connections to it are refused
    s = server.start(SCRIPT, env={"AZUREML_DEBUG_PORT": str(port)}, expect_ready=False)
    assert s.wait_exit(20) == 3, s.logs()
    out = s.output()
    assert (f"AZUREML_DEBUG_PORT={port} is set but no debugger listens on 127.0.0.1:{port} (Connection refused). "
            "Start your IDE's debug listener on that port first") in out, out
    assert f'"listen": {{"host": "127.0.0.1", "port": {port}}}' in out, out
    assert "Traceback" not in out and "ConnectionRefusedError" not in out, out
    assert out.count("Booting worker with pid") == 1, out
