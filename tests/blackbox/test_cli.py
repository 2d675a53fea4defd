"""Checklist items 59-64, 66, 70, 73, 74 and boot-failure acceptance (docs/behaviour.md 1.2-1.7, 2.3)."""
import os
import re
import time

import pytest

from bb_http import request
from conftest import FIXTURES, children_of, listening_ports, run_cli

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
MSG_NO_ENTRY = ("Either provide an entry_script using --entry_script or provide a path to the configuration file "
                "using --config_file")


def test_c59_no_args(tmp_path):
    rc, out, err, _ = run_cli([])
    assert rc == 1, (rc, out, err)
    assert re.search(rf"^{TS} E \[\d+\] azmlinfsrv - Error!$", out, re.M), out
    assert re.search(rf"^{TS} E \[\d+\] azmlinfsrv - {re.escape(MSG_NO_ENTRY)}$", out, re.M), out
    # the check looks only at the flags, not at the environment
    script = os.path.join(FIXTURES, "echo_input.py")
    rc, out, err, _ = run_cli([], env={"AZUREML_ENTRY_SCRIPT": script})
    assert rc == 1, (rc, out, err)
    assert MSG_NO_ENTRY in out


@pytest.mark.parametrize("args", [
    ["--port", "0"],
    ["--port", "70000"],
    ["--port", "abc"],
    ["--worker_count", "0"],
    ["--health_port", "0"],
    ["--bogus_flag"],
    ["--entry-script", "x.py"],  # only the underscore spellings exist
])
def test_c60_bad_cli_args(args):
    script = os.path.join(FIXTURES, "echo_input.py")
    rc, out, err, elapsed = run_cli(["--entry_script", script] + args)
    assert rc == 1, (rc, out, err)
    assert "usage:" in err, f"stderr should show usage:\n{err}"
    assert re.search(r"^azmlinfsrv: error: ", err, re.M), err
    if args[0] == "--port":
        assert f"azmlinfsrv: error: argument --port: invalid validate_port value: '{args[1]}'" in err, err
    # argparse prints the description and options (without usage) to stdout
    assert "Azure ML Inferencing HTTP server v1.5.1" in out, out
    assert elapsed < 5, elapsed
    assert "Server Settings" not in out, "no server may start on a parse error"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_c60_help(flag):
    rc, out, err, elapsed = run_cli([flag])
    assert rc == 0, (rc, out, err)  # docs/differences.md: -h exits 0 (reference: 1)
    assert "usage:" in out, out
    assert "Azure ML Inferencing HTTP server v1.5.1" in out, out
    for opt in ("--entry_script", "--model_dir", "--port", "--health_port", "--worker_count", "--config_file",
                "--access_control_allow_origins", "--appinsights_instrumentation_key"):
        assert opt in out, f"help lacks {opt}:\n{out}"
    assert elapsed < 5


def test_c61_missing_entry_script(server, tmp_path):
    missing = str(tmp_path / "does_not_exist.py")
    s = server.start(missing, expect_ready=False)
    t0 = time.monotonic()
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    assert time.monotonic() - t0 < 5
    out = s.stdout()
    assert "No such file or directory." in out, s.logs()
    assert "FileNotFoundError: [Errno 2]" in out, s.logs()


def test_c62_indentation_error(server):
    s = server.start("indent_error.py", expect_ready=False)
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    out = s.stdout()
    assert "IndentationError: unindent does not match any outer indentation level" in out, s.logs()
    assert f'File "{s.script}", line 7' in out, s.logs()


def test_c63_init_raises(server):
    s = server.start("init_raises.py", expect_ready=False)
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    out = s.stdout()
    assert "User's init function failed" in out, s.logs()
    assert "Traceback (most recent call last)" in out, s.logs()
    assert f'File "{s.script}", line 3, in init' in out, s.logs()
    assert "RuntimeError: init-boom-5c1e" in out, s.logs()
    assert "Model Directory Contents:" not in out


def _logged_messages(out, logger="azmlinfsrv"):
    return re.findall(rf"^{TS} I \[\d+\] {re.escape(logger)} - (.*)$", out, re.M)


def test_c63_init_raises_model_dir_tree(server, tmp_path):
    d = tmp_path / "model"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "empty").mkdir()
    (d / "a.txt").write_text("a")
    (d / "Z.txt").write_text("z")
    (d / "sub" / "b.bin").write_text("b")
    (d / "sub" / "deeper" / "c.json").write_text("{}")
    s = server.start("init_raises.py", args=["--model_dir", str(d) + "/"], expect_ready=False)
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    out = s.stdout()
    assert "User's init function failed" in out, s.logs()
    # As the reference logs it: one line per entry, the folder's own name first, sorted, folders with a
    # slash, four spaces per level.
    messages = _logged_messages(out)
    at = messages.index("Model Directory Contents:")
    assert messages[at:] == ["Model Directory Contents:", "model/", "    Z.txt", "    a.txt", "    empty/", "    sub/",
                             "        b.bin", "        deeper/", "            c.json"], s.logs()


def test_c63_model_dir_tree_truncated_at_200_lines(server, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(250):
        (d / f"f{i:03}").write_text("")
    s = server.start("init_raises.py", args=["--model_dir", str(d)], expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    messages = _logged_messages(s.stdout())
    at = messages.index("Model Directory Contents:")
    assert messages[at + 1:] == ["many/"] + [f"    f{i:03}" for i in range(199)] + [
        "Output Truncated. First 200 lines shown."], s.logs()


@pytest.mark.parametrize("fixture,message", [
    ("no_init.py", "does not have a init() function defined."),
    ("no_run.py", "does not have a run() function defined."),
    ("star_args.py", "run() cannot accept positional-only arguments, *args, or **kwargs."),
])
def test_c64_bad_script_shape(server, fixture, message):
    s = server.start(fixture, expect_ready=False)
    t0 = time.monotonic()
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    assert time.monotonic() - t0 < 5
    assert message in s.stdout(), s.logs()
    if fixture != "star_args.py":
        assert f"User script at {s.script} {message}" in s.stdout(), s.logs()
        # The reference checks for init() and run() before it names the script it found.
        assert "Found user script" not in s.stdout(), s.logs()


def test_c66_port_flag(server):
    s = server.start("echo_input.py")
    r = request(s.port, "GET", "/")
    assert r.status == 200 and r.body == b"Healthy"
    ports = listening_ports({s.pid} | children_of(s.pid))
    assert ports == {s.port}, f"server listens on {ports}, expected only {s.port}"


def banner_lines(port, script, workers=1, model_dir="None"):
    return [
        "",
        "Azure ML Inferencing HTTP server v1.5.1",
        "",
        "",
        "Server Settings",
        "---------------",
        f"Entry Script Name: {script}",
        f"Model Directory: {model_dir}",
        "Config File: None",
        f"Worker Count: {workers}",
        "Worker Timeout (seconds): None",
        f"Server Port: {port}",
        f"Health Port: {port}",
        "Application Insights Enabled: false",
        "Application Insights Key: None",
        "Inferencing HTTP server version: azmlinfsrv/1.5.1",
        "CORS for the specified origins: None",
        "Create dedicated endpoint for health: None",
        "",
        "",
        "Server Routes",
        "---------------",
        f"Liveness Probe: GET   127.0.0.1:{port}/",
        f"Score:          POST  127.0.0.1:{port}/score",
        "",
    ]


def find_block(lines, block):
    for i in range(len(lines) - len(block) + 1):
        if lines[i:i + len(block)] == block:
            return i
    return -1


def test_c70_banner(server):
    s = server.start("echo_input.py")
    s.wait_for_log(rf"^{TS} I \[\d+\] azmlinfsrv[\w.]* - Worker with pid \d+ ready for serving traffic$")
    lines = s.stdout().splitlines()
    block = banner_lines(s.port, s.script)
    i = find_block(lines, block)
    assert i >= 0, "banner block not found verbatim:\n" + "\n".join(block) + "\n" + s.logs()
    worker_lines = [n for n, ln in enumerate(lines) if "Worker with pid" in ln]
    assert worker_lines and min(worker_lines) > i, "banner must come before any 'Worker with pid' line\n" + s.logs()
    assert s.stdout().count("Azure ML Inferencing HTTP server v1.5.1") == 1, s.logs()
    assert s.stdout().count("Server Settings") == 1, s.logs()


def test_c70_banner_variants(server, tmp_path):
    s = server.start("echo_input.py", args=["--worker_count", "2", "--model_dir", "./m"],
                     env={"WORKER_TIMEOUT": "20"})
    lines = s.stdout().splitlines()
    block = banner_lines(s.port, s.script, workers=2, model_dir="./m")
    block[block.index("Worker Timeout (seconds): None")] = "Worker Timeout (seconds): 20"
    assert find_block(lines, block) >= 0, "\n".join(block) + "\n" + s.logs()


def test_c73_model_dir(server):
    s = server.start("env_dump.py")
    lines = s.stdout().splitlines()
    assert "The environment variable 'AZUREML_MODEL_DIR' has not been set." in lines, s.logs()
    assert "Use the --model_dir command line argument to set it." in lines, s.logs()
    i = lines.index("The environment variable 'AZUREML_MODEL_DIR' has not been set.")
    j = lines.index("Azure ML Inferencing HTTP server v1.5.1")
    assert i < j, "model-dir message must come before the banner"
    r = request(s.port, "POST", "/score", body="x")
    assert r.json()["AZUREML_MODEL_DIR"] is None
    s.stop()

    # the flag beats the env and is passed as given (not made absolute)
    s = server.start("env_dump.py", args=["--model_dir", "./my/dir"], env={"AZUREML_MODEL_DIR": "/from/env"})
    r = request(s.port, "POST", "/score", body="x")
    assert r.status == 200, r
    assert r.json()["AZUREML_MODEL_DIR"] == "./my/dir"
    assert "has not been set" not in s.stdout()
    assert "Model Directory: ./my/dir" in s.stdout().splitlines()
    s.stop()

    # env alone is kept
    s = server.start("env_dump.py", env={"AZUREML_MODEL_DIR": "/from/env"})
    r = request(s.port, "POST", "/score", body="x")
    assert r.json()["AZUREML_MODEL_DIR"] == "/from/env"
    assert "has not been set" not in s.stdout()


def test_c74_app_root_and_entry_script_env(server, tmp_path):
    # relative --entry_script from CWD = script dir
    s = server.start("env_dump.py", cwd=FIXTURES, add_entry_script=False, args=["--entry_script", "env_dump.py"])
    r = request(s.port, "POST", "/score", body="x")
    assert r.status == 200, r
    j = r.json()
    assert j["AML_APP_ROOT"] == os.path.realpath(FIXTURES) or j["AML_APP_ROOT"] == FIXTURES, j
    assert j["AZUREML_ENTRY_SCRIPT"] == os.path.realpath(os.path.join(FIXTURES, "env_dump.py")), j
    assert os.path.isabs(j["AZUREML_ENTRY_SCRIPT"])
    assert os.path.realpath(j["cwd"]) == os.path.realpath(FIXTURES), "the server must not chdir"
    s.stop()

    # a pre-set AML_APP_ROOT is kept
    root = tmp_path / "approot"
    root.mkdir()
    s = server.start("env_dump.py", env={"AML_APP_ROOT": str(root)})
    j = request(s.port, "POST", "/score", body="x").json()
    assert j["AML_APP_ROOT"] == str(root), j


def test_spine_boot_failure_multi_worker(server):
    s = server.start("syntax_error.py", args=["--worker_count", "3"], expect_ready=False)
    t0 = time.monotonic()
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    assert time.monotonic() - t0 < 5
    both = s.output()
    loc = f'File "{s.script}", line 5'
    assert both.count(loc) == 1, f"traceback location {loc!r} should appear exactly once\n{s.logs()}"
    assert both.count("SyntaxError: expected ':'") == 1, s.logs()


@pytest.mark.parametrize("signature, message", [
    ("run(data, **kwargs)", "run() cannot accept positional-only arguments, *args, or **kwargs."),
    ("run(data, /)", "run() cannot accept positional-only arguments, *args, or **kwargs."),
    ("run()", "run() needs to accept an argument for input data."),
    ("run(request_headers)", 'run() needs to accept an argument other than "request_headers".'),
])
def test_signatures_refused_at_start_exit_3(server, signature, message):
    # README: the run() signatures the server refuses stop it with exit code 3.
    s = server.start(f"def init():\n    pass\n\n\ndef {signature}:\n    return 1\n", expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    assert f"azureml_inference_server_http.server.user_script.UserScriptError: {message}" in s.stdout(), s.logs()


def test_run_with_a_required_extra_parameter_starts_and_fails_each_request(server):
    # README: other parameters are not checked at start, as in Azure ML: run(data, model, threshold) serves,
    # and every request is a 500 whose log shows the TypeError.
    s = server.start("def init():\n    pass\n\n\ndef run(data, model, threshold):\n    return data\n")
    for _ in range(2):
        r = request(s.port, "POST", "/score", body=b"x")
        assert r.status == 500, r
        assert r.json() == {"message": "An unexpected error occurred in scoring script. Check the logs for more info."}
        assert r.one("x-ms-run-function-failed") == "True"
    s.wait_for_log(r"TypeError: run\(\) missing 2 required positional arguments: 'model' and 'threshold'$")
    assert s.alive()
