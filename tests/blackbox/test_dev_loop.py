"""Issue 15, the local debugging loop: what a person running a score.py on their own machine sees."""
import re

from conftest import wait_workers

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def test_slow_init_says_it_is_still_running(server):
    # A large model can take minutes to load: every 10 s the worker says init() is still running, so a
    # silent terminal does not look like a hung server. It stops once init() returns.
    s = server.start("import time\n\ndef init():\n    time.sleep(10.7)\n\ndef run(data):\n    return data\n",
                     ready_timeout=20)
    wait_workers(s, 1)
    pid = next(iter(s.workers()))
    out = s.stdout()
    lines = re.findall(rf"^{TS} I \[(\d+)\] azmlinfsrv\.user_script - init\(\) still running after (\d+) s \(pid (\d+)\)$",
                       out, re.M)
    assert lines == [(str(pid), "10", str(pid))], out
    assert out.index("still running after 10 s") < out.index("Users's init has completed successfully"), out
