"""Checklist items 75, 76 (docs/behaviour.md 6), and logging when the script imports it (or never does)."""
import datetime
import json
import re
import subprocess
import sys
import time

import pytest
from bb_http import request
from conftest import wait_workers

TS = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d{3}"


def assert_utc_recent(ts):
    t = datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - t).total_seconds()) < 120, f"log timestamp {ts} is not UTC now ({now})"


def test_worker_boot_sequence(server):
    # docs/behaviour.md 2.2: the worker's boot lines in the reference's order; its own tests look for
    # "Starting up app insights client".
    s = server.start("echo_input.py", env={"AML_CORS_ORIGINS": "http://a.com, http://b.com"})
    s.wait_for_log(r"Worker with pid \d+ ready for serving traffic$")
    out = s.stdout()
    worker_lines = out[out.index("Initializing logger"):].splitlines()
    messages = [re.sub(rf"^{TS} [IW] \[\d+\] ", "", line) for line in worker_lines]
    assert messages[:11] == [
        "Initializing logger",
        "azmlinfsrv - Starting up app insights client",
        "azmlinfsrv.trace - Model directory is not set or does not exist: None",
        "azmlinfsrv - Enabling CORS for the following origins: http://a.com, http://b.com",
        f"azmlinfsrv.user_script - Found user script at {s.script}",
        "azmlinfsrv.user_script - run() is not decorated. Server will invoke it with the input in JSON string.",
        "azmlinfsrv.user_script - Invoking user's init function",
        "azmlinfsrv.user_script - Users's init has completed successfully",
        "azmlinfsrv.swagger - Swaggers are prepared for the following versions: [2, 3, 3.1].",
        "azmlinfsrv - Scoring timeout is set to 3600000",
        f"azmlinfsrv - Worker with pid {min(s.workers())} ready for serving traffic",
    ], s.logs()


def test_c75_print_hook(server):
    # a non-UTC TZ must not change the log timestamps (they are UTC)
    s = server.start("print_in_init.py", env={"TZ": "IST-5:30"})
    init_rx = rf"^{TS} I \[(\d+)\] azmlinfsrv\.print - Initializing$"
    m = s.wait_for_log(init_rx)
    assert_utc_recent(m.group(1))
    assert int(m.group(2)) in s.workers() or int(m.group(2)) == s.pid, (m.group(2), s.workers())
    for _ in range(3):
        r = request(s.port, "POST", "/score", body="x")
        assert r.status == 200, r
    run_rx = rf"^{TS} I \[\d+\] azmlinfsrv\.print - A new request received~~~$"
    deadline = time.monotonic() + 3
    while s.count_log(run_rx) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    out = s.stdout()
    assert len(re.findall(init_rx, out, re.M)) == 1, out
    assert sum(1 for ln in out.splitlines() if ln.endswith("Initializing")) == 1, "print must appear exactly once"
    assert not any(ln.endswith("Initializing") for ln in s.stderr().splitlines()), s.logs()
    assert len(re.findall(run_rx, out, re.M)) == 3, out
    assert out.count("A new request received~~~") == 3, out
    assert "A new request received~~~" not in s.stderr()


def test_c76_request_log_line(server):
    s = server.start("echo_input.py", env={"TZ": "IST-5:30"})
    line_rx = rf"^{TS} I \[\d+\] azmlinfsrv - POST /score 200 (\d+\.\d{{3}})ms (\d+)$"
    bodies = []
    for i in range(4):
        r = request(s.port, "POST", "/score", body=f"req{i}" * (i + 1))
        assert r.status == 200, r
        bodies.append(r.body)
        r = request(s.port, "GET", "/")
        assert r.status == 200
    deadline = time.monotonic() + 3
    while s.count_log(line_rx) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    out = s.stdout()
    lines = re.findall(line_rx, out, re.M)
    assert len(lines) == 4, f"expected exactly 4 POST /score log lines\n{out}"
    assert sorted(int(n) for _, _, n in lines) == sorted(len(b) for b in bodies), (lines, bodies)
    assert_utc_recent(lines[0][0])
    assert len(re.findall(r"azmlinfsrv - POST /score", out)) == 4, out
    # GET / produces no azmlinfsrv line (and no access line)
    assert not re.search(r"azmlinfsrv[\w.]* - (GET|HEAD|OPTIONS) / ", out), out
    assert "GET / HTTP/1.1" not in out, out
    # a GET with a query logs the raw query
    r = request(s.port, "GET", "/score?a=1&a=2&b=x")
    assert r.status == 200
    s.wait_for_log(rf"^{TS} I \[\d+\] azmlinfsrv - GET /score\?a=1&a=2&b=x 200 \d+\.\d{{3}}ms {len(r.body)}$")


def test_script_importing_logging_finds_the_server_configuration_and_can_change_it(server):
    s = server.start("logging_user.py")
    r = request(s.port, "POST", "/score", body="x")
    assert r.status == 200, r
    assert r.json() == {"handlers": [["aml_stdout", True]], "level": 20, "propagate": False}, r
    s.wait_for_log(rf"^{TS} W \[\d+\] azmlinfsrv\.user_script - warned in init$")
    out = s.stdout()
    assert re.search(rf"^{TS} I \[\d+\] azmlinfsrv\.print - printed at import$", out, re.M), out
    assert re.search(rf"^{TS} I \[\d+\] azmlinfsrv\.user_script - Invoking user's init function$", out, re.M), out
    # INFO below the level init() set: the print in init, the lines after init.
    for silenced in ("printed in init", "Users's init has completed successfully", "Swaggers are prepared",
                     "Scoring timeout is set to"):
        assert silenced not in out, (silenced, out)


def test_worker_imports_no_logging_or_json_the_script_does_not_use(server):
    # logging, json and their re, traceback and enum are most of a worker's start-up; the server imports
    # them only when the script (or a library) does. Modules this machine's site imports don't count: the
    # suite runs under the interpreter the server embeds (/usr/bin/python3 unless -Dpython says otherwise).
    candidates = ["logging", "json", "re", "traceback", "enum", "signal", "inspect", "urllib.parse"]
    bare = subprocess.run([sys.executable, "-c", f"import sys; print([m for m in {candidates!r} if m in sys.modules])"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    heavy = [m for m in candidates if m not in bare]
    s = server.start("imported_modules.py")
    r = request(s.port, "POST", "/score", body=",".join(heavy))
    assert r.status == 200, r
    assert r.json() == [], (heavy, r.json())
    r = request(s.port, "GET", "/swagger.json")
    assert r.status == 200 and r.json()["info"]["title"] == "ML service", r
    r = request(s.port, "POST", "/score", body=",".join(heavy))
    assert r.json() == [], r.json()


def test_user_logging_json_disables_the_server_loggers_that_exist_before_it(server, tmp_path):
    # dictConfig's disable_existing_loggers (true by default): azmlinfsrv and azmlinfsrv.user_script exist
    # when a user logging.json is applied, so they go quiet; azmlinfsrv.print and .swagger come later.
    (tmp_path / "logging.json").write_text(json.dumps({
        "version": 1,
        "formatters": {"f": {"format": "ROOT %(name)s | %(message)s"}},
        "handlers": {"h": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "f"}},
        "root": {"level": "INFO", "handlers": ["h"]},
    }))
    s = server.start("print_in_init.py", cwd=str(tmp_path))
    s.wait_for_log(r"^ROOT azmlinfsrv\.swagger \| Swaggers are prepared for the following versions")
    out = s.stdout()
    assert "ROOT azmlinfsrv.print | Initializing" in out, out
    for silenced in ("Found user script at", "Invoking user's init function", "Users's init has completed",
                     "Scoring timeout is set to", str(tmp_path / "logging.json")):
        assert silenced not in out, (silenced, out)


def test_user_logging_json_written_for_the_reference_loads(server, tmp_path):
    """A logging.json written for the reference names azureml_inference_server_http.log_config's
    AMLLogFormatter and RootAccessFilter (as the reference's own tests and docs do): it must load."""
    (tmp_path / "logging.json").write_text(json.dumps({
        "version": 1,
        "handlers": {"h": {"class": "logging.StreamHandler", "level": "INFO", "stream": "ext://sys.stdout",
                           "formatter": "aml"}},
        "formatters": {"aml": {"class": "azureml_inference_server_http.log_config.AMLLogFormatter",
                               "format": "[%(levelname)s] [%(process)d] %(name)s %(asctime)s | %(message)s",
                               "style": "%"}},
        "loggers": {"azmlinfsrv": {"level": "INFO", "handlers": ["h"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": ["h"], "filters": ["RootAccessFilter"]}},
        "filters": {"RootAccessFilter": {"()": "azureml_inference_server_http.log_config.RootAccessFilter"}},
    }))
    s = server.start("print_in_init.py", cwd=str(tmp_path), env={"AML_APP_ROOT": str(tmp_path)})
    s.wait_for_log(r"^\[INFO\] \[\d+\] azmlinfsrv \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \| Starting up app insights "
                   r"client$")
    assert "Unable to configure" not in s.stderr(), s.stderr()


def test_logging_configured_in_init_disables_only_the_loggers_made_before(server):
    s = server.start("logging_dictconfig_in_init.py")
    s.wait_for_log(rf"^{TS} I \[\d+\] azmlinfsrv\.swagger - Swaggers are prepared for the following versions")
    out = s.stdout()
    assert re.search(rf"^{TS} I \[\d+\] azmlinfsrv\.user_script - Invoking user's init function$", out, re.M), out
    for silenced in ("Users's init has completed", "Scoring timeout is set to"):
        assert silenced not in out, (silenced, out)


def test_reloading_logging_keeps_the_server_loggers(server):
    s = server.start("logging_reload.py")
    s.wait_for_log(rf"^{TS} I \[\d+\] azmlinfsrv\.user_script - Users's init has completed successfully$")
    s.wait_for_log(rf"^{TS} I \[\d+\] azmlinfsrv - Scoring timeout is set to \d+$")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_logging_configured_at_script_import_disables_the_server_loggers_made_before(server, log_format):
    # In both formats the server's loggers exist before the script runs (with JSON logs, logging is
    # configured at boot; with text, when the script imports it), as with the reference.
    s = server.start("logging_dictconfig_at_import.py", args=["--log_format", log_format])
    s.wait_for_log(r"Swaggers are prepared for the following versions")
    out = s.stdout()
    for silenced in ("printed in init", "Invoking user's init function", "Users's init has completed",
                     "Scoring timeout is set to"):
        assert silenced not in out, (silenced, out)


@pytest.mark.parametrize("layout,expected", [
    (None, r"W \[\d+\] azmlinfsrv\.trace - Model directory is not set or does not exist: None$"),
    ("missing", r"W \[\d+\] azmlinfsrv\.trace - Model directory is not set or does not exist: .*/missing$"),
    ("files", r"E \[\d+\] azmlinfsrv\.trace - Error while fetching model IDs$"),
    ("models", None),
    ("version", None),
])
def test_model_ids_enumerated_at_start_as_the_reference(server, tmp_path, layout, expected):
    """The reference's App Insights client lists the model ids at every start, telemetry on or off: a
    model folder unset or missing is a WARNING, one that is not <model>/<version> an ERROR with its
    traceback; <model>/<version> folders and a folder ending in a version say nothing."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "weights.bin").write_text("w")
    (tmp_path / "models" / "m" / "3").mkdir(parents=True)
    (tmp_path / "version" / "7").mkdir(parents=True)
    args = [] if layout is None else ["--model_dir", str(tmp_path / layout / ("7" if layout == "version" else ""))]
    s = server.start("print_in_init.py", args=args)
    s.wait_for_log(r"azmlinfsrv\.swagger - Swaggers are prepared")
    out = s.stdout()
    if expected:
        assert re.search(expected, out, re.M), out
    else:
        assert "azmlinfsrv.trace" not in out, out


WHOLE_LINES_SCRIPT = '''
import os, sys

def init():
    pid = os.getpid()
    for i in range(400):
        print(f"err-{pid}-{i:04d}", file=sys.stderr)
        sys.stdout.write(f"out-{pid}-")
        sys.stdout.write(f"{i:04d}\\n")

def run(data):
    return data
'''


def test_lines_from_several_workers_stay_whole(server):
    # A line goes out in one write even when the script writes it in pieces (print writes its text and
    # its end apart), so the output of workers starting together never mixes within a line; the boot
    # lines ("Initializing logger") are such lines too.
    s = server.start(WHOLE_LINES_SCRIPT, args=["--worker_count", "4"])
    wait_workers(s, 4)
    s.stop()
    out_lines = [ln for ln in s.stdout().splitlines() if "out-" in ln or "Initializing logger" in ln]
    err_lines = [ln for ln in s.stderr().splitlines() if "err-" in ln]
    assert len(out_lines) == 4 * 400 + 4, s.stdout()[-3000:]
    assert len(err_lines) == 4 * 400, s.stderr()[-3000:]
    mixed = [ln for ln in out_lines if not re.fullmatch(r"out-\d+-\d{4}|Initializing logger", ln)]
    mixed += [ln for ln in err_lines if not re.fullmatch(r"err-\d+-\d{4}", ln)]
    assert not mixed, mixed[:10]
