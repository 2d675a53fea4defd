"""The log of a run() exception and of a failed boot ends as the reference's does (docs/behaviour.md 2.3, 3.5).

The reference wraps the script's exception in its own (UserScriptException, UserScriptImportException,
UserScriptTimeout; UserScriptError for a script it refuses) and logs that traceback; log readers key their
alerts on its last line. Ours shows the script's frames only, then the same last lines: the chaining
sentence, the reference's exception line and the empty line its message ends with. The expected lines are
the reference's, observed."""
import re

from bb_http import request

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
PREFIX = "azureml_inference_server_http.server.user_script."
CAUSE = ["", "The above exception was the direct cause of the following exception:", ""]


def record(out, first_line_pattern):
    """The lines of the log record whose first line matches, up to the next record."""
    lines = out.split("\n")[:-1]  # the text after the last newline is not a line
    for i, line in enumerate(lines):
        if re.match(rf"^{TS} E \[\d+\] " + first_line_pattern, line):
            end = i + 1
            while end < len(lines) and not re.match(rf"^{TS} [DIWEC] \[\d+\] ", lines[end]):
                end += 1
            return lines[i:end]
    raise AssertionError(f"no record matching {first_line_pattern!r} in\n{out}")


def test_run_exception_ends_with_user_script_exception(server):
    s = server.start("raises.py")
    assert request(s.port, "POST", "/score", body=b"x").status == 500
    s.wait_for_log(r"POST /score 500 ")
    lines = record(s.stdout(), r"azmlinfsrv - Encountered Exception: Traceback \(most recent call last\):$")
    assert f'  File "{s.script}", line 7, in run' in lines, lines
    assert lines[-6:] == ["ValueError: boom-from-run-7f3a"] + CAUSE + [
        PREFIX + "UserScriptException: Caught an unhandled exception from the user script", ""], lines
    assert not any("azureml_inference_server_http/" in line for line in lines), lines  # the server's frames left out


def test_scoring_timeout_ends_with_user_script_timeout(server):
    s = server.start("slow.py", env={"SCORING_TIMEOUT_MS": "300"})
    assert request(s.port, "POST", "/score", body=b"2").status == 500
    s.wait_for_log(r"POST /score 500 ")
    lines = record(s.stdout(), r"azmlinfsrv - Encountered Exception: Traceback \(most recent call last\):$")
    assert f'  File "{s.script}", line 17, in run' in lines, lines
    assert lines[-6:] == ["TimeoutError: Scoring timeout"] + CAUSE + [
        PREFIX + "UserScriptTimeout: Script failed to finish execution within the allocated time: 300ms", ""], lines
    assert not any("azureml_inference_server_http/" in line for line in lines), lines


def test_import_failure_ends_with_user_script_import_exception(server):
    s = server.start("import_raises.py", expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    lines = record(s.stdout(), re.escape(f"azmlinfsrv - Failed to load the entry script {s.script}:") + "$")
    assert f'  File "{s.script}", line 6, in <module>' in lines, lines
    assert lines[-6:] == ["RuntimeError: import-boom-91d2"] + CAUSE + [
        PREFIX + "UserScriptImportException: Failed to import user script because it raised an unhandled exception",
        ""], lines


def test_syntax_error_ends_with_user_script_import_exception(server):
    s = server.start("indent_error.py", expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    lines = record(s.stdout(), re.escape(f"azmlinfsrv - Failed to load the entry script {s.script}:") + "$")
    assert lines[-6:] == ["IndentationError: unindent does not match any outer indentation level"] + CAUSE + [
        PREFIX + "UserScriptImportException: Failed to import user script because it raised an unhandled exception",
        ""], lines


def test_init_failure_ends_with_user_script_exception(server):
    s = server.start("init_raises.py", expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    lines = record(s.stdout(), r"azmlinfsrv - Encountered Exception Traceback \(most recent call last\):$")
    assert lines[-6:] == ["RuntimeError: init-boom-5c1e"] + CAUSE + [
        PREFIX + "UserScriptException: Caught an unhandled exception from the user script", ""], lines


def test_refused_script_ends_with_user_script_error(server):
    s = server.start("no_init.py", expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    lines = record(s.stdout(), r"azmlinfsrv - ")
    assert lines[0].split(" - ", 1)[1] == (
        f"{PREFIX}UserScriptError: User script at {s.script} does not have a init() function defined."), lines
    assert lines[1:] == [""], lines
