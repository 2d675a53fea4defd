"""The server's lines before and after the score script imports logging (_lazy_logging), and the swagger
documents served without json: each fast path must give what the library gives, character for character."""

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from unittest import mock

import pytest

from azureml_inference_server_http import _lazy_logging, _server, _swagger
from azureml_inference_server_http._logging import AML_LOG_FORMAT, UTCFormatter

PACKAGE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "python_bridge", "python"))
SWAGGER_DIR = os.path.join(PACKAGE_ROOT, "azureml_inference_server_http", "swagger")


@pytest.mark.parametrize("created", [1764099710.096, 1764099710.0, 1764099710.9999999, 1.5, 2000000000.000999])
@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL])
@pytest.mark.parametrize("message", ["hello", "100% sure\nsecond line", "déjà vu ☃"])
def test_native_line_is_the_packaged_formatters_line(created, level, message):
    with mock.patch("time.time", return_value=created):  # LogRecord derives created and msecs from it
        record = logging.LogRecord("azmlinfsrv.user_script", level, __file__, 1, message, None, None)
    record.process = 4242
    expected = UTCFormatter(fmt=AML_LOG_FORMAT).format(record)
    assert _lazy_logging.format_line(created, level, 4242, "azmlinfsrv.user_script", message) == expected


def _run(code, **env):
    full_env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT, **env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def _bare_interpreter_has(module):
    """Whether this machine's site (a .pth file, sitecustomize) imports the module before any script."""
    out = subprocess.run([sys.executable, "-c", f"import sys; print({module!r} in sys.modules)"],
                         capture_output=True, text=True, timeout=60).stdout
    return out.strip() == "True"


def test_lines_are_native_until_logging_is_imported_then_configured_as_packaged(tmp_path):
    if _bare_interpreter_has("logging"):
        pytest.skip("this interpreter's site imports logging before any script")
    proc = _run("""
        import io, json, sys
        from azureml_inference_server_http import _server, _print_hook
        boot_stdout = sys.stdout
        _server._configure_logging(%r, None)
        before = "logging" in sys.modules
        _server.logger.info("native %%s %%d%%%%", "line", 7)
        _print_hook.install()
        print("printed", 1)
        meta_path_before = len(sys.meta_path)
        import importlib.util
        found = importlib.util.find_spec("logging")  # the wrapped loader answers as the real one
        loader_answers = [found.loader.is_package("logging"), found.loader.get_filename("logging")]
        sys.stdout = io.StringIO()  # the configuration is for the stdout of the boot, not this one
        import logging
        sys.stdout = boot_stdout
        state = {
            "logging_imported_before": before,
            "meta_path_grew_by": meta_path_before - len(sys.meta_path),
            "loader_is_real": type(logging.__loader__).__name__, "spec_loader_is_real": type(logging.__spec__.loader).__name__,
            "handlers": [(h.name, type(h.formatter).__name__, h.stream is boot_stdout)
                         for h in logging.getLogger("azmlinfsrv").handlers],
            "level": logging.getLogger("azmlinfsrv").level,
            "propagate": logging.getLogger("azmlinfsrv").propagate,
            "loggers": [n for n in logging.root.manager.loggerDict if n.startswith("azmlinfsrv")],
            "loader_answers": loader_answers,
        }
        seen = []
        class Catch(logging.Handler):
            def emit(self, record):
                seen.append((record.name, record.getMessage(), record.funcName, record.filename))
        logging.getLogger("azmlinfsrv").addHandler(Catch())
        def call_site():
            _server.logger.info("through %%s", "logging")
        call_site()
        print("printed", 2)
        state["seen"] = seen
        sys.stderr.write(json.dumps(state))
    """ % str(tmp_path))
    state = json.loads(proc.stderr)
    assert state["logging_imported_before"] is False
    assert state["meta_path_grew_by"] == 1  # the finder left sys.meta_path once it had fired
    assert (state["loader_is_real"], state["spec_loader_is_real"]) == ("SourceFileLoader", "SourceFileLoader")
    assert state["handlers"] == [["aml_stdout", "UTCFormatter", True]]
    assert (state["level"], state["propagate"]) == (logging.INFO, False)
    # Made in the order the server made them; azmlinfsrv.swagger only comes with the swagger documents.
    assert state["loggers"] == ["azmlinfsrv", "azmlinfsrv.user_script", "azmlinfsrv.print"]
    assert state["loader_answers"][0] is True and state["loader_answers"][1].endswith("/logging/__init__.py")
    # The record names the server's call site, as when the server called logging itself.
    assert state["seen"] == [["azmlinfsrv", "through logging", "call_site", "<string>"],
                             ["azmlinfsrv.print", "printed 2", "_print_to_logger", "_print_hook.py"]]
    lines = proc.stdout.splitlines()
    pid = r"\[\d+\]"
    patterns = [rf"I {pid} azmlinfsrv - native line 7%$", rf"I {pid} azmlinfsrv.print - printed 1$",
                rf"I {pid} azmlinfsrv - through logging$", rf"I {pid} azmlinfsrv.print - printed 2$"]
    assert len(lines) == 4, lines
    for line, pattern in zip(lines, patterns):
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} " + pattern, line), (line, pattern)


def test_a_line_the_stream_cannot_take_goes_through_logging_and_its_error_handling(tmp_path):
    # A lone surrogate cannot be written to a strict UTF-8 stdout: logging reports it on stderr
    # ("--- Logging error ---") and goes on; so does the server before the script imports logging.
    if _bare_interpreter_has("logging"):
        pytest.skip("this interpreter's site imports logging before any script")
    proc = _run("""
        import sys
        from azureml_inference_server_http import _server
        _server._configure_logging(%r, None)
        _server.logger.error("bad %%s", "\\udc80")
        _server.logger.info("after")
        sys.stderr.write("\\nlogging imported: %%s" %% ("logging" in sys.modules))
    """ % str(tmp_path), PYTHONIOENCODING="utf-8:strict")
    assert "--- Logging error ---" in proc.stderr
    assert "UnicodeEncodeError" in proc.stderr
    assert proc.stderr.endswith("logging imported: True")
    assert proc.stdout.endswith(" azmlinfsrv - after\n")


def test_without_stdout_the_lines_go_to_stderr_as_the_handler_sends_them(tmp_path):
    # fd 1 closed: sys.stdout is None, and logging.StreamHandler(None) writes to stderr.
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from azureml_inference_server_http import _server
        assert sys.stdout is None
        _server._configure_logging(%r, None)
        _server.logger.info("info line")
        _server.logger.warning("warning line")
    """ % str(tmp_path))], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT), pass_fds=(), close_fds=True,
        preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert [line.split(" - ", 1)[1] for line in lines] == ["info line", "warning line"], proc.stderr
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} I \[\d+\] azmlinfsrv - info line$", lines[0]), lines


def test_server_package_imports_neither_logging_nor_json(tmp_path):
    heavy = [m for m in ("logging", "json", "re", "traceback", "enum") if not _bare_interpreter_has(m)]
    if not heavy:
        pytest.skip("this interpreter's site imports them all")
    proc = _run("""
        import sys
        from azureml_inference_server_http import _server, _print_hook, _swagger
        from azureml_inference_server_http.api import aml_request, aml_response
        _server._configure_logging(%r, None)
        _server.logger.info("a line")
        _swagger.build_swaggers(%r)
        print(sorted(m for m in %r if m in sys.modules), file=sys.stderr)
    """ % (str(tmp_path), str(tmp_path), heavy))
    assert proc.stderr.strip() == "[]", proc.stderr


# --- swagger ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["2", "3", "3.1"])
def test_undecorated_swagger_files_are_what_json_dumps_gives(version):
    path = os.path.join(SWAGGER_DIR, _swagger._UNDECORATED_SWAGGER_FILES[version])
    with open(path, encoding="utf-8") as f:
        committed = f.read()
    assert committed == _swagger.undecorated_swagger_text(version), (
        f"{path} no longer matches its template: regenerate it with "
        f"PYTHONPATH=python_bridge/python /usr/bin/python3 -c \"import sys; from azureml_inference_server_http "
        f"import _swagger; sys.stdout.write(_swagger.undecorated_swagger_text('{version}'))\" > {path}")


def _slow_swaggers():
    """The undecorated documents as the reference makes them: the template's text with the values replaced
    in turn, json.loads, the two schemas set, json.dumps. Written out here, apart from _server's code."""
    prefix = os.environ.get("SERVICE_PATH_PREFIX", "")
    documents = {}
    for version in ("2", "3", "3.1"):
        with open(os.path.join(SWAGGER_DIR, "swagger2_template.json" if version == "2" else "swagger3_template.json"),
                  encoding="utf-8") as f:
            text = f.read()
        text = (text.replace("$SERVICE_NAME$", os.environ.get("SERVICE_NAME", "ML service"))
                .replace("$SERVICE_VERSION$", os.environ.get("SERVICE_VERSION", "1.0"))
                .replace("$PATH_PREFIX$", "/" + prefix.strip("/") if prefix else ""))
        document = json.loads(text)
        schemas = document["definitions"] if version == "2" else document["components"]["schemas"]
        schemas["ServiceInput"] = {"type": "object", "example": {}}
        schemas["ServiceOutput"] = {"type": "object", "example": {}}
        if version == "3.1":
            document["openapi"] = "3.1.0"
        documents[version] = json.dumps(document).encode("utf-8")
    return documents


@pytest.mark.parametrize("env", [
    {},
    {"SERVICE_NAME": "iris-classifier", "SERVICE_VERSION": "7.2", "SERVICE_PATH_PREFIX": "/api/v1/"},
    {"SERVICE_PATH_PREFIX": "x", "SERVICE_NAME": "name with spaces, $ and ~ {}[]:,"},
    {"SERVICE_NAME": "$SERVICE_VERSION$", "SERVICE_VERSION": "$PATH_PREFIX$", "SERVICE_PATH_PREFIX": "p"},
    {"SERVICE_NAME": "caf\u00e9 \u2603"},  # non-ASCII: the long way
    {"SERVICE_VERSION": "a\\/b \\u0041"},  # escapes json.dumps writes differently: the long way
], ids=["defaults", "set", "punctuation", "placeholders", "non-ascii", "escapes"])
def test_swaggers_served_are_json_dumps_of_the_template(env, monkeypatch, tmp_path):
    for name in ("SERVICE_NAME", "SERVICE_VERSION", "SERVICE_PATH_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _swagger.build_swaggers(str(tmp_path)) == _slow_swaggers()


def test_a_thread_logging_while_another_imports_logging_waits_for_the_configuration(tmp_path):
    # Thread A imports logging; its module code is slow. Thread B writes a server line meanwhile: B must
    # wait for A's import (which configures logging), so A finds logging configured when its import
    # returns and neither line is lost.
    if _bare_interpreter_has("logging"):
        pytest.skip("this interpreter's site imports logging before any script")
    proc = _run("""
        import importlib.machinery, sys, threading, time, json
        from azureml_inference_server_http import _server
        _server._configure_logging(%r, None)
        module_ran = threading.Event()

        class SlowLoader(importlib.machinery.SourceFileLoader):
            def exec_module(self, module):
                super().exec_module(module)
                module_ran.set()
                time.sleep(0.5)

        class SlowFinder:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name != "logging":
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                spec.loader = SlowLoader(spec.loader.name, spec.loader.path)
                return spec

        sys.meta_path.insert(1, SlowFinder)  # behind the server's finder

        def b():
            module_ran.wait()
            _server.logger.info("from B")

        thread = threading.Thread(target=b)
        thread.start()
        import logging
        handlers = [h.name for h in logging.getLogger("azmlinfsrv").handlers]
        _server.logger.info("from A")
        thread.join()
        sys.stderr.write(json.dumps({"handlers": handlers,
                                     "after": [h.name for h in logging.getLogger("azmlinfsrv").handlers]}))
    """ % str(tmp_path))
    state = json.loads(proc.stderr)
    assert state == {"handlers": ["aml_stdout"], "after": ["aml_stdout"]}, state
    messages = sorted(line.split(" - ", 1)[1] for line in proc.stdout.splitlines())
    assert messages == ["from A", "from B"], proc.stdout


def test_a_finder_with_only_find_module_still_loads_logging_and_it_is_configured(tmp_path):
    if _bare_interpreter_has("logging"):
        pytest.skip("this interpreter's site imports logging before any script")
    proc = _run("""
        import importlib.machinery, sys, json
        from azureml_inference_server_http import _server
        _server._configure_logging(%r, None)

        class OldFinder:  # the pre-3.4 protocol, which Python 3.11 still honours
            loader = None

            @classmethod
            def find_module(cls, name, path=None):
                if name != "logging":
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                cls.loader = importlib.machinery.SourceFileLoader(spec.loader.name, spec.loader.path)
                return cls.loader

        sys.meta_path.insert(1, OldFinder)
        import logging
        sys.stderr.write(json.dumps({"by_old_finder": logging.__loader__ is OldFinder.loader,
                                     "handlers": [h.name for h in logging.getLogger("azmlinfsrv").handlers]}))
    """ % str(tmp_path))
    assert json.loads(proc.stderr.splitlines()[-1]) == {"by_old_finder": True, "handlers": ["aml_stdout"]}


def test_a_line_written_whose_flush_fails_is_not_written_again(tmp_path):
    proc = _run("""
        import sys
        from azureml_inference_server_http import _lazy_logging, _server

        class FlushFailsOnce:
            def __init__(self):
                self.text, self.failed = "", False
            def write(self, text):
                self.text += text
            def flush(self):
                if not self.failed:
                    self.failed = True
                    raise BlockingIOError(11, "flush failed")

        stream = FlushFailsOnce()
        _lazy_logging.write_natively_until_imported(stream, _server.apply_packaged_logging)
        _lazy_logging.get_logger("azmlinfsrv").info("once")
        sys.stderr.write(stream.text)
    """)
    assert proc.stderr.count(" azmlinfsrv - once\n") == 1, proc.stderr
