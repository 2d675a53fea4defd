"""Unit tests for the pure-Python package shipped to score scripts.

AMLResponse rules are checked against both bases it can sit on: flask.Response
and the fallback used when flask is missing. Expected values come from
docs/behaviour.md 4.6 and checklist items 31-35.
"""

import builtins
import functools
import importlib.util
import inspect
import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from unittest import mock

import pytest

PACKAGE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "python_bridge", "python"))
PACKAGE_DIR = os.path.join(PACKAGE_ROOT, "azureml_inference_server_http")

import azureml_inference_server_http  # noqa: E402
import azureml_inference_server_http.api  # noqa: E402  (parent of the modules loaded below)
from azureml_inference_server_http import _print_hook  # noqa: E402
from azureml_inference_server_http.api import aml_request, aml_response  # noqa: E402

flask = pytest.importorskip("flask")


def _load_without_flask(module_name):
    """Load a fresh copy of api/<module_name>.py as if flask were not installed."""
    path = os.path.join(PACKAGE_DIR, "api", module_name + ".py")
    spec = importlib.util.spec_from_file_location(
        f"azureml_inference_server_http.api._{module_name}_without_flask", path
    )
    module = importlib.util.module_from_spec(spec)
    # A None entry makes `import flask` raise ImportError; patch.dict puts sys.modules back afterwards.
    with mock.patch.dict(sys.modules, {"flask": None}):
        spec.loader.exec_module(module)
        # The classes are built on first access (so that importing the module never imports flask):
        # build them while flask is hidden.
        for lazy in ("AMLRequest", "AMLResponse"):
            getattr(module, lazy, None)
    return module


def _subprocess_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_ROOT
    env.update(extra)
    return env


@pytest.fixture(params=["flask", "fallback"])
def AMLResponse(request):
    if request.param == "flask":
        cls = aml_response.AMLResponse
        assert issubclass(cls, flask.Response)
    else:
        cls = _load_without_flask("aml_response").AMLResponse
        assert not issubclass(cls, flask.Response)
        assert cls.__mro__[1].__module__ == "azureml_inference_server_http.api._response_base"
    return cls


# --- version -------------------------------------------------------------------------------------


def test_version_file_is_exactly_the_version_and_matches_dunder_version():
    with open(os.path.join(PACKAGE_DIR, "VERSION"), "rb") as f:
        assert f.read() == b"1.5.1\n"
    assert azureml_inference_server_http.__version__ == "1.5.1"


# --- rawhttp / AMLRequest ------------------------------------------------------------------------


def test_rawhttp_sets_module_flag_and_returns_function_unchanged(monkeypatch):
    monkeypatch.setattr(aml_request, "_rawHttpRequested", False)

    def run(request):
        return request

    assert aml_request.rawhttp(run) is run
    assert aml_request._rawHttpRequested is True


def test_amlrequest_is_a_flask_request_that_cannot_be_instantiated():
    assert issubclass(aml_request.AMLRequest, flask.Request)
    with pytest.raises(TypeError):
        aml_request.AMLRequest()
    # The reference's __init__ takes no arguments, so even a valid environ is refused.
    with pytest.raises(TypeError):
        aml_request.AMLRequest({"REQUEST_METHOD": "GET"})


def test_amlrequest_without_flask_raises_clear_type_error():
    module = _load_without_flask("aml_request")
    with pytest.raises(TypeError, match="type hint"):
        module.AMLRequest()
    assert module.rawhttp(len) is len and module._rawHttpRequested is True


# --- AMLResponse (both bases) --------------------------------------------------------------------


def test_item31_plain_str_keeps_status_and_html_content_type(AMLResponse):
    r = AMLResponse("test", 444)
    assert r.status_code == 444
    assert r.status == "444 UNKNOWN"
    assert r.get_data() == b"test"
    assert r.headers.getlist("Content-Type") == ["text/html; charset=utf-8"]
    assert r.mimetype == "text/html"
    assert r.headers.getlist("x-ms-run-function-failed") == ["False"]


def test_item32_json_str_dumps_message_as_json(AMLResponse):
    r = AMLResponse("test", 555, json_str=True)
    assert r.status_code == 555
    assert r.get_data() == b'"test"'
    assert r.headers.getlist("Content-Type") == ["application/json"]
    # The server, not AMLResponse, turns this into True for status >= 500.
    assert r.headers.getlist("x-ms-run-function-failed") == ["False"]


def test_json_str_serialises_structures(AMLResponse):
    r = AMLResponse({"k": "é", "n": [1, 2]}, 200, json_str=True)
    assert r.get_data() == b'{"k": "\\u00e9", "n": [1, 2]}'
    assert r.content_type == "application/json"


def test_item33_none_message_is_empty_json_object(AMLResponse):
    r = AMLResponse(None, 333)
    assert r.status_code == 333
    assert r.get_data() == b"{}"
    assert r.headers.getlist("Content-Type") == ["application/json"]


def test_item34_headers_split_on_commas_and_json_content_type_duplicated(AMLResponse):
    r = AMLResponse(
        None,
        555,
        {"a": "A", "b": "A, B, C", "content-type": "A", "x-ms-run-function-failed": "Z"},
        run_function_failed=True,
    )
    assert r.headers.getlist("a") == ["A"]
    assert r.headers.getlist("b") == ["A", "B", "C"]
    assert r.headers.getlist("Content-Type") == ["application/json", "A"]
    assert r.headers.getlist("x-ms-run-function-failed") == ["True", "Z"]
    assert list(r.headers) == [
        ("Content-Type", "application/json"),
        ("Content-Length", "2"),
        ("x-ms-run-function-failed", "True"),
        ("a", "A"),
        ("b", "A"),
        ("b", "B"),
        ("b", "C"),
        ("content-type", "A"),
        ("x-ms-run-function-failed", "Z"),
    ]


def test_item35_bytes_with_user_content_type_has_single_header(AMLResponse):
    r = AMLResponse(b"\x89PNG", 200, {"Content-Type": "image/png"})
    assert r.status == "200 OK"
    assert r.get_data() == b"\x89PNG"
    assert r.headers.getlist("Content-Type") == ["image/png"]
    assert r.headers.get("content-length") == "4"


def test_json_mode_exact_content_type_is_added_as_duplicate(AMLResponse):
    r = AMLResponse([1], 200, {"Content-Type": "text/plain"}, json_str=True)
    assert r.headers.getlist("Content-Type") == ["application/json", "text/plain"]


def test_non_json_mode_only_exact_case_content_type_replaces_default(AMLResponse):
    r = AMLResponse("x", 200, {"content-type": "text/plain"})
    assert r.headers.getlist("Content-Type") == ["text/html; charset=utf-8", "text/plain"]


def test_non_json_mode_content_type_with_comma_is_split_too(AMLResponse):
    r = AMLResponse("x", 200, {"Content-Type": "text/plain, text/csv"})
    assert r.headers.getlist("Content-Type") == ["text/plain", "text/csv"]


def test_status_string_with_custom_reason(AMLResponse):
    r = AMLResponse("x", "299 CUSTOM")
    assert r.status_code == 299
    assert r.status == "299 CUSTOM"


@pytest.mark.parametrize(
    "status, expected",
    [(201, "201 CREATED"), ("404", "404 NOT FOUND"), (511, "511 NETWORK AUTHENTICATION FAILED"), ("abc", "0 abc")],
)
def test_status_text_matches_werkzeug(AMLResponse, status, expected):
    assert AMLResponse("x", status).status == expected


def test_str_body_is_utf8_with_content_length(AMLResponse):
    r = AMLResponse("é", 200)
    assert r.get_data() == b"\xc3\xa9"
    assert r.headers.get("Content-Length") == "2"


def test_dict_message_without_json_str_sends_its_keys(AMLResponse):
    assert AMLResponse({"a": 1, "b": 2}, 200).get_data() == b"ab"


def test_list_message_sends_items_concatenated(AMLResponse):
    r = AMLResponse(["x", b"y"], 200)
    assert r.get_data() == b"xy"
    assert "Content-Length" not in r.headers


def test_generator_is_streamed_lazily_item_by_item(AMLResponse):
    produced = []

    def gen():
        for part in ("one", "two"):
            produced.append(part)
            yield part

    r = AMLResponse(gen(), 200)
    assert produced == []
    assert r.is_streamed
    assert list(r.iter_encoded()) == [b"one", b"two"]
    assert produced == ["one", "two"]


def test_non_iterable_message_fails_only_when_body_is_read(AMLResponse):
    r = AMLResponse(42, 200)
    assert r.status_code == 200
    with pytest.raises(TypeError):
        r.get_data()


def test_non_str_header_value_fails_in_constructor(AMLResponse):
    with pytest.raises(AttributeError):
        AMLResponse("x", 200, {"X-Count": 3})


def test_newline_in_header_value_is_rejected(AMLResponse):
    with pytest.raises(ValueError):
        AMLResponse("x", 200, {"X-Evil": "a\r\nSet-Cookie: b"})


def test_run_function_failed_is_stringified(AMLResponse):
    assert AMLResponse("x", 200, run_function_failed=True).headers.get("x-ms-run-function-failed") == "True"
    assert AMLResponse("x", 200, run_function_failed=1).headers.get("x-ms-run-function-failed") == "1"


def test_header_lookup_is_case_insensitive(AMLResponse):
    r = AMLResponse("x", 200, {"X-Multi": "1, 2"})
    assert r.headers.getlist("x-multi") == ["1", "2"]
    assert r.headers.get("X-MULTI") == "1"
    assert "x-MULTI" in r.headers
    assert r.headers.get("absent", "dflt") == "dflt"


def test_default_headers_dict_is_never_mutated(AMLResponse):
    AMLResponse("x", 200)
    AMLResponse(None, 200)
    assert AMLResponse.__init__.__defaults__[0] == {}


# --- fallback parity, through the real import path ------------------------------------------------

_SNAPSHOT_CASES = [
    'AMLResponse("test", 444)',
    'AMLResponse("test", 555, json_str=True)',
    "AMLResponse(None, 333)",
    'AMLResponse(None, 555, {"a": "A", "b": "A, B, C", "content-type": "A", "x-ms-run-function-failed": "Z"}, '
    "run_function_failed=True)",
    'AMLResponse(b"\\x89PNG", 200, {"Content-Type": "image/png"})',
    'AMLResponse("x", "299 CUSTOM", {"Content-Type": "text/plain; charset=utf-8", "X-A": " 1 ,2,, "})',
    'AMLResponse({"a": 1, "b": 2}, 203)',
    'AMLResponse(["é", b"z"], 418, {"Access-Control-Allow-Methods": "GET, POST"})',
    "AMLResponse((c for c in 'ab'), True)",
    'AMLResponse(bytearray(b"ba"), 207)',
    "AMLResponse(7, 200)",
]

_SNAPSHOT_CODE = textwrap.dedent(
    """
    def snapshot(AMLResponse, cases):
        out = []
        for case in cases:
            r = eval(case, {"AMLResponse": AMLResponse})
            try:
                body = r.get_data().hex()
            except Exception as exc:
                body = type(exc).__name__
            out.append([case, r.status, r.status_code, [list(kv) for kv in r.headers], r.mimetype, body])
        return out
    """
)


def _snapshot(AMLResponse):
    namespace = {}
    exec(_SNAPSHOT_CODE, namespace)
    return namespace["snapshot"](AMLResponse, _SNAPSHOT_CASES)


def test_package_imports_without_flask_and_fallback_matches_flask():
    script = _SNAPSHOT_CODE + textwrap.dedent(
        """
        import json, sys
        sys.modules["flask"] = None
        import azureml_inference_server_http
        from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp
        from azureml_inference_server_http.api.aml_response import AMLResponse
        try:
            AMLRequest()
            request_error = None
        except TypeError as exc:
            request_error = str(exc)
        print(json.dumps({
            "version": azureml_inference_server_http.__version__,
            "base": AMLResponse.__mro__[1].__module__,
            "request_error": request_error,
            "snapshot": snapshot(AMLResponse, json.loads(sys.argv[1])),
        }))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(_SNAPSHOT_CASES)],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["version"] == "1.5.1"
    assert result["base"] == "azureml_inference_server_http.api._response_base"
    assert result["request_error"] and "type hint" in result["request_error"]

    with_flask = json.loads(json.dumps(_snapshot(aml_response.AMLResponse)))
    assert result["snapshot"] == with_flask
    # Guard against both sides being wrong in the same way: spot-check the flask side.
    by_case = {row[0]: row for row in with_flask}
    assert by_case['AMLResponse({"a": 1, "b": 2}, 203)'][1:3] == ["203 NON AUTHORITATIVE INFORMATION", 203]
    assert bytes.fromhex(by_case['AMLResponse({"a": 1, "b": 2}, 203)'][5]) == b"ab"
    assert by_case["AMLResponse(7, 200)"][5] == "TypeError"


# --- logging.json --------------------------------------------------------------------------------

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) I \[(\d+)\] azmlinfsrv - hello$")


# The server applies the packaged logging.json without logging.config (apply_packaged_logging, for
# start-up time); both ways must give the same result.
@pytest.mark.parametrize("how", ["dictConfig", "apply_packaged_logging"])
def test_logging_json_gives_utc_reference_format_on_stdout_without_propagating(how):
    script = textwrap.dedent(
        """
        import io, json, logging, logging.config, os, sys, time
        from azureml_inference_server_http import _print_hook, _server
        # Loggers that exist before the config is applied (libraries, the bridge) must keep working.
        early = logging.getLogger("early.lib")
        if sys.argv[2] == "dictConfig":
            with open(sys.argv[1]) as f:
                logging.config.dictConfig(json.load(f))
        else:
            _server.apply_packaged_logging()
        server_logger = logging.getLogger("azmlinfsrv")
        handler = server_logger.handlers[0]
        root_handlers_before = len(logging.getLogger().handlers)
        root_sink = io.StringIO()
        # Score scripts often call basicConfig; server lines must not be duplicated onto root.
        logging.basicConfig(stream=root_sink, format="ROOT %(message)s")
        log = logging.getLogger("azmlinfsrv")
        log.info("hello")
        log.debug("debug is below INFO")
        logging.getLogger("some.library").info("below root's default WARNING level")
        _print_hook.install()
        _print_hook.install()
        print("Initializing")
        record = logging.makeLogRecord({"name": "azmlinfsrv", "levelno": logging.WARNING, "levelname": "WARNING",
                                        "msg": "fixed", "created": 1764099710.096, "msecs": 96.0, "process": 14939})
        sys.stderr.write(json.dumps({
            "pid": os.getpid(),
            "gmtoff": time.localtime().tm_gmtoff,
            "early_disabled": early.disabled,
            "root_handlers_before": root_handlers_before,
            "root_level": logging.getLogger().level,
            "root_output": root_sink.getvalue(),
            "fixed": log.handlers[0].format(record),
            "handlers": [(type(h).__name__, h.name, h.stream is sys.stdout, h.level, type(h.formatter).__name__,
                          h.formatter._fmt, h.formatter.datefmt) for h in server_logger.handlers],
            "level": server_logger.level,
            "propagate": server_logger.propagate,
            "disabled": server_logger.disabled,
        }))
        """
    )
    before = datetime.now(timezone.utc).replace(microsecond=0)
    proc = subprocess.run(
        [sys.executable, "-c", script, os.path.join(PACKAGE_DIR, "logging.json"), how],
        capture_output=True,
        text=True,
        # A zone 5.5 h ahead of UTC: local-time stamps would be caught.
        env=_subprocess_env(TZ="IST-05:30"),
        timeout=60,
    )
    after = datetime.now(timezone.utc)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stderr)
    assert info["gmtoff"] == 5 * 3600 + 1800
    assert info["early_disabled"] is False
    assert info["root_handlers_before"] == 0
    assert info["root_level"] == logging.WARNING
    assert info["root_output"] == ""
    assert info["fixed"] == "2025-11-25 19:41:50,096 W [14939] azmlinfsrv - fixed"
    assert info["handlers"] == [["StreamHandler", "aml_stdout", True, logging.NOTSET, "UTCFormatter",
                                 "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s", None]]
    assert (info["level"], info["propagate"], info["disabled"]) == (logging.INFO, False, False)

    lines = proc.stdout.splitlines()
    assert len(lines) == 2, lines
    match = LOG_LINE.match(lines[0])
    assert match, lines[0]
    assert int(match.group(3)) == info["pid"]
    stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert before <= stamp <= after
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} I \[\d+\] azmlinfsrv.print - Initializing$", lines[1])


# --- print hook ----------------------------------------------------------------------------------


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))


@pytest.fixture
def print_records():
    logger = logging.getLogger("azmlinfsrv.print")
    handler = _ListHandler()
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    original_print = builtins.print
    try:
        yield handler.messages
    finally:
        _print_hook.uninstall()
        builtins.print = original_print
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def test_print_to_stdout_is_logged_exactly_once(print_records, capsys):
    _print_hook.install()
    _print_hook.install()
    print("A new request received~~~", 1, end="<end>", flush=True)
    print("a", "b", sep="-", file=sys.stdout)
    assert print_records == [(logging.INFO, "A new request received~~~ 1"), (logging.INFO, "a-b")]
    assert capsys.readouterr().out == ""


def test_print_to_other_files_goes_through_original_print(print_records, capsys):
    _print_hook.install()
    _print_hook.install()  # a second install must not make these recurse
    print("err", 2, sep=":", file=sys.stderr)
    buffer = io.StringIO()
    print("x", "y", sep="+", end="!", file=buffer)
    assert capsys.readouterr().err == "err:2\n"
    assert buffer.getvalue() == "x+y!"
    assert print_records == []


def test_print_hook_uninstall_restores_builtin(print_records):
    original = builtins.print
    _print_hook.install()
    assert builtins.print is not original and _print_hook.is_installed()
    _print_hook.uninstall()
    assert builtins.print is original and not _print_hook.is_installed()


def test_importing_the_api_does_not_import_flask():
    # Workers import both modules for every script (the azureml.contrib.services aliases); flask costs
    # ~150 ms and ~17 MiB per worker, so it must wait until a script names AMLRequest or AMLResponse.
    code = ("import sys\n"
            "from azureml_inference_server_http.api import aml_request, aml_response\n"
            "assert 'flask' not in sys.modules, 'flask imported too early'\n"
            "from azureml_inference_server_http.api.aml_response import AMLResponse\n"
            "assert 'flask' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=_subprocess_env())


# --- boot helpers that stand in for inspect and importlib.util (start-up time) ----------------------


def _wraps(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)
    return wrapper


class _Scorer:
    def run(self, data, request_headers=None):
        pass

    def __call__(self, data, *, flag=True):
        pass


def _plain(data):
    pass


def _defaults(data, extra=1, *, key, option=None):
    pass


def _positional_only(data, /, other):
    pass


def _var(data, *rest, k=1, **more):
    pass


def _only_var(*args, **kwargs):
    pass


def _headers(data, request_headers):
    pass


def _no_args():
    pass


def _signature_attr(data):
    pass


_signature_attr.__signature__ = inspect.signature(_defaults)


@pytest.mark.parametrize("run", [
    _plain, _defaults, _positional_only, _var, _only_var, _headers, _no_args, _signature_attr,
    lambda data=None: data, _wraps(_defaults), functools.partial(_defaults, 1), _Scorer().run, _Scorer(),
], ids=lambda run: getattr(run, "__name__", type(run).__name__))
def test_run_parameters_agree_with_inspect_signature(run):
    from azureml_inference_server_http import _script

    kinds = {inspect.Parameter.POSITIONAL_ONLY: "positional_only",
             inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
             inspect.Parameter.VAR_POSITIONAL: "var_positional",
             inspect.Parameter.KEYWORD_ONLY: "keyword_only",
             inspect.Parameter.VAR_KEYWORD: "var_keyword"}
    expected = [(p.name, kinds[p.kind], _script.NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
                for p in inspect.signature(run).parameters.values()]
    assert _script.run_parameters(run) == expected


def test_entry_script_loading_uses_importlib_util_functions():
    from azureml_inference_server_http import _script

    assert _script._spec_from_file_location is importlib.util.spec_from_file_location
    assert _script._module_from_spec is importlib.util.module_from_spec
