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


def test_a_near_name_for_run_or_init_is_named(server):
    # Issue 15 (5): a script written for another server defines predict() (or load_model()): after the
    # reference's line, one more says which function it meant and what to do; exit 3, once.
    cases = [
        ("def init():\n    pass\n\ndef predict(data):\n    return data\n",
         "score.py defines predict(); the server calls run(). Rename it to run(), or add a run() that calls it."),
        ("def load_model():\n    pass\n\ndef run(data):\n    return data\n",
         "score.py defines load_model(); the server calls init(). Rename it to init(), or add an init() that "
         "calls it."),
        ("def init():\n    pass\n\ndef Run(data):\n    return data\n",
         "score.py defines Run(); the server calls run(). Rename it to run(), or add a run() that calls it."),
    ]
    for script, hint in cases:
        s = server.start(script, expect_ready=False)
        assert s.wait_exit(10) == 3, s.logs()
        out = s.stdout()
        # The reference's record (which ends with an empty line), then the hint as the next record.
        reference_line = re.search(r"UserScriptError: User script at \S+ does not have a (init|run)\(\) function "
                                   r"defined\.\n\n?(.*)\n", out)
        assert reference_line, out
        assert re.fullmatch(rf"{TS} E \[\d+\] azmlinfsrv - {re.escape(hint)}", reference_line.group(2)), out


def test_no_near_name_no_hint(server):
    s = server.start("def init():\n    pass\n\ndef helper(data):\n    return data\n", expect_ready=False)
    assert s.wait_exit(10) == 3, s.logs()
    assert "does not have a run() function defined." in s.stdout()
    assert "the server calls run()" not in s.output(), s.logs()


def test_required_parameters_beyond_the_input_are_named_at_load(server):
    # Issue 15 (5): the server passes run() its input alone (and request_headers when it asks), so a
    # required parameter beyond it fails every request; the load says so, naming them.
    s = server.start("def init():\n    pass\n\ndef run(data, model_name, *, threshold):\n    return data\n")
    out = s.stdout()
    assert re.search(rf"^{TS} W \[\d+\] azmlinfsrv\.user_script - run\(\) requires model_name, threshold beyond its "
                     r"input, but the server passes only data: every request will fail with a TypeError\. Give them a "
                     r"default value, or read them from the input\.$", out, re.M), out
    s2 = server.start("def init():\n    pass\n\ndef run(data, request_headers, limit=3):\n    return data\n")
    assert "beyond its input" not in s2.stdout(), s2.logs()


def test_an_exception_in_a_script_thread_goes_through_the_log(server):
    # Issue 15 (7): threading prints a dying thread's traceback to stderr, apart from the log; here it is
    # an ERROR record naming the thread, with the script's frames.
    script = ("import threading\n\ndef load():\n    raise ValueError('model file is corrupt')\n\n"
              "def init():\n    t = threading.Thread(target=load, name='loader')\n    t.start()\n    t.join()\n\n"
              "def run(data):\n    return data\n")
    s = server.start(script)
    pid = next(iter(s.workers()))
    m = re.search(rf"^{TS} E \[{pid}\] azmlinfsrv - Exception in thread loader \(pid {pid}\):\n"
                  r"Traceback \(most recent call last\):\n(?:  .*\n)*?  File \".*score\.py\", line 4, in load\n"
                  r"    raise ValueError\('model file is corrupt'\)\nValueError: model file is corrupt$", s.stdout(), re.M)
    assert m, s.stdout()
    assert "Exception in thread" not in s.stderr(), s.stderr()


def test_the_scoring_timeout_says_how_to_give_run_longer(server):
    # Issue 15 (7): the answer stays the reference's; after the reference's record, one more says which
    # setting to raise. A TimeoutError the script raises itself gets no such line.
    from bb_http import request

    s = server.start("import time\n\ndef init():\n    pass\n\ndef run(data):\n"
                     "    if data == 'own':\n        raise TimeoutError('the model server timed out')\n"
                     "    time.sleep(2)\n    return data\n", env={"SCORING_TIMEOUT_MS": "300"})
    r = request(s.port, "POST", "/score", body=b"slow")
    assert r.status == 500, r
    assert r.json() == {"message": "Scoring timeout after 300 ms"}, r
    s.wait_for_log(r"SCORING_TIMEOUT_MS")
    hint = (r" W \[\d+\] azmlinfsrv - run\(\) was stopped at the scoring timeout of 300 ms\. If it needs longer, "
            r"raise SCORING_TIMEOUT_MS \(milliseconds, in the environment or config\.json\)\.$")
    assert len(re.findall(TS + hint, s.stdout(), re.M)) == 1, s.stdout()
    r = request(s.port, "POST", "/score", body=b"own")
    assert r.status == 500, r
    s.wait_for_log(r"TimeoutError: the model server timed out")
    assert len(re.findall(TS + hint, s.stdout(), re.M)) == 1, s.stdout()
