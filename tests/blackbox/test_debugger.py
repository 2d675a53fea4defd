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
