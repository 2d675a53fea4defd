"""The worker's Python half: the one-time work that reads best in Python.

The native bridge calls ``boot()`` once per worker (configuration, logging, loading the entry script,
analysing run(), calling init()), then calls run() itself on the hot path and comes back here only for
the rare paths: GET query conversion, request_headers, Response objects and error logging.
Messages and their order follow docs/behaviour.md 2.2, 2.3 and 4.1-4.3.
"""

import _signal  # signal's functions without its enums (signal.py imports enum)
import faulthandler
import importlib
import importlib.machinery
import os
import sys
import types

from ._lazy_logging import configure_if_imported, get_logger, use_logging_now, write_natively_until_imported

# Not imported here: logging, json, traceback, inspect, logging.config, importlib.util and urllib.parse,
# which (with re and enum behind them) cost a worker more start-up time than the rest of its boot. Each
# is imported where a rare path needs it; logging is configured when the script imports it
# (_lazy_logging).
# importlib.util's two functions the boot needs are these (the same objects; tests/python checks it),
# without the contextlib import that importlib.util brings.
_spec_from_file_location = importlib._bootstrap_external.spec_from_file_location
_module_from_spec = importlib._bootstrap.module_from_spec

logger = get_logger("azmlinfsrv")
user_script_logger = get_logger("azmlinfsrv.user_script")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_DEFAULT_APP_ROOT = "/var/azureml-app"
_DEFAULT_SCORING_TIMEOUT_MS = 3600000
_TREE_LINE_LIMIT = 200


class BootFailure(Exception):
    """A boot error whose message is the whole story (no traceback of ours needed)."""


class Entry:
    """What the native side needs to serve: run() and how to call it."""

    def __init__(self, run, mode, input_name, wants_headers, scoring_timeout_ms, swaggers, parameters):
        self.parameters = parameters  # object mode: [(name, has_default)] of run()'s inputs
        self.swaggers = swaggers  # {"2": bytes, "3": bytes, "3.1": bytes}, the versions this script supports
        self.run = run
        self.mode = mode  # "json", "raw" or "object"
        self.input_name = input_name
        self.wants_headers = wants_headers
        self.scoring_timeout_ms = scoring_timeout_ms


def _env(name, default=None):
    # The reference's settings object matches env names case-insensitively (docs/behaviour.md 1.4).
    if name in os.environ:
        return os.environ[name]
    lowered = name.lower()
    for key, value in os.environ.items():
        if key.lower() == lowered:
            return value
    return default


def _configuration_error(lines):
    bar = "=" * 51
    logger.critical("\n===============Configuration Error=================\n%s\n%s", "\n".join(lines), bar)


# The settings a config.json may carry (docs/behaviour.md 1.5): the reference's pydantic aliases, plus the AML_*
# keys its documentation promises (honoured here, docs/differences.md).
_CONFIG_KEYS = (
    "AZUREML_SOURCE_DIRECTORY", "AZUREML_ENTRY_SCRIPT", "SERVICE_NAME", "WORKSPACE_NAME", "SERVICE_PATH_PREFIX",
    "SERVICE_VERSION", "SCORING_TIMEOUT_MS", "AZUREML_LOG_LEVEL", "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
    "AZUREML_MODEL_DIR", "HOSTNAME", "AZUREML_DEBUG_PORT",
    "AML_APP_ROOT", "AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY", "AML_MODEL_DC_STORAGE_ENABLED",
    "AML_CORS_ORIGINS",
)
_CONFIG_KEY_ALIASES = {"AML_MODEL_DC_STORAGE_ENABLED": "AML_MDC_STORAGE_ENABLED"}
_BOOL_SETTINGS = ("APP_INSIGHTS_LOG_RESPONSE_ENABLED", "AML_APP_INSIGHTS_ENABLED", "AML_MDC_STORAGE_ENABLED")
_INT_SETTINGS = ("SCORING_TIMEOUT_MS", "AZUREML_DEBUG_PORT")
_BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"}


class ConfigFile:
    """The config.json found by discovery, applied under the environment (env wins over the file)."""

    def __init__(self):
        self.path = None
        self.error = None  # the exception that made the file unreadable
        self.extra_keys = []
        self.from_file = set()

    def apply(self, app_root, entry_script):
        candidates = [_env("AZUREML_CONFIG_FILE"), os.path.join(app_root, "config.json")]
        if entry_script:
            candidates.append(os.path.join(os.path.dirname(entry_script), "config.json"))
        for candidate in candidates:
            if candidate and os.path.isfile(candidate) and os.path.getsize(candidate) > 0:
                self.path = candidate
                break
        if self.path is None:
            return
        import json

        try:
            with open(self.path, encoding="utf-8") as f:
                values = json.load(f)
            if not isinstance(values, dict):
                raise ValueError("the file must hold a JSON object, not %s" % type(values).__name__)
        except (OSError, ValueError) as error:
            self.error = error
            return
        for key, value in values.items():
            if key not in _CONFIG_KEYS:
                self.extra_keys.append(key)
                continue
            name = _CONFIG_KEY_ALIASES.get(key, key)
            if _env(name) is None and value is not None:
                os.environ[name] = value if isinstance(value, str) else json.dumps(value)
                self.from_file.add(name)


def _validate_settings(config):
    """Type checks of the reference's settings object; each failure is one line of the CRITICAL block."""
    problems = []

    def source(name):
        return "config file: %s" % config.path if name in config.from_file else "environment variable: %s" % name

    for name in _INT_SETTINGS:
        raw = _env(name)
        if raw is not None:
            try:
                int(raw.strip())
            except ValueError:
                problems.append("%s: Input should be a valid integer, unable to parse string as an integer (%s)"
                                % (name, source(name)))
    for name in _BOOL_SETTINGS:
        raw = _env(name)
        if raw is not None and raw.strip().lower() not in _BOOL_WORDS:
            problems.append("%s: Input should be a valid boolean, unable to interpret input (%s)" % (name, source(name)))
    if problems:
        raise BootFailure("\n".join(problems))


def _read_scoring_timeout():
    raw = _env("SCORING_TIMEOUT_MS")
    return _DEFAULT_SCORING_TIMEOUT_MS if raw is None else int(raw.strip())


def _attach_debugger():
    """AZUREML_DEBUG_PORT (docs/behaviour.md 1.4): connect to a waiting debug adapter before the script loads."""
    port = _env("AZUREML_DEBUG_PORT")
    if port is None:
        return
    port = int(port.strip())
    _say("!! Starting the inference server in DEBUGGING mode because AZUREML_DEBUG_PORT is set.")
    _say("!! This environment variable should not be set in a production environment.")
    try:
        import debugpy
    except ImportError:
        _say("** Cannot connect to a debugger because debugpy is not installed.")
        # The reference exits 255 and crash-loops; a boot failure stops once, with the fix in the message.
        raise BootFailure("AZUREML_DEBUG_PORT=%s is set but debugpy is not installed. Install it "
                          "(apt-get install python3-debugpy, or pip install debugpy) or unset AZUREML_DEBUG_PORT."
                          % port)
    _say("** Connecting to debugger at port %d..." % port)
    debugpy.connect(port)
    debugpy.wait_for_client()


def _json_logs():
    return os.environ.get("AZMLINFSRV_LOG_FORMAT") == "json"


def _say(text):
    """A plain print of the reference's boot sequence; a log record when every line must be JSON."""
    if _json_logs():
        logger.info("%s", text)
    else:
        print(text, flush=True)


def _use_json_formatter():
    import logging

    from ._logging import JsonFormatter

    formatter = JsonFormatter()
    for name in [""] + list(logging.root.manager.loggerDict):
        for handler in getattr(logging.getLogger(name), "handlers", []):
            handler.setFormatter(formatter)


def _configure_logging(app_root, entry_script):
    candidates = [os.path.join(app_root, "logging.json")]
    if entry_script:
        candidates.append(os.path.join(os.path.dirname(os.path.realpath(entry_script)), "logging.json"))
    for path in candidates:
        if os.path.isfile(path):
            import json
            import logging.config

            use_logging_now()  # the server's loggers exist before the configuration, which may disable them
            with open(path, encoding="utf-8") as f:
                logging.config.dictConfig(json.load(f))
            if _json_logs():
                _use_json_formatter()
            logger.info("Loaded logging config from %s", path)
            return
    # StreamHandler(sys.stdout) writes to stderr when there is no stdout (fd 1 closed).
    stream = sys.stdout if sys.stdout is not None else sys.stderr
    if _json_logs() or "logging" in sys.modules or stream is None:  # imported already: a .pth, sitecustomize
        use_logging_now()
        apply_packaged_logging(stream)
        if _json_logs():
            _use_json_formatter()
    else:
        write_natively_until_imported(stream, apply_packaged_logging)


def apply_packaged_logging(stream=None):
    """What logging.config.dictConfig does with the packaged logging.json, without importing
    logging.config (and with it logging.handlers, socket, pickle, queue) at every worker start.
    tests/python/test_package.py checks that the two configure the same thing. ``stream``: the
    sys.stdout the configuration is for (the one at boot when it is applied later), else sys.stdout."""
    import logging

    from ._logging import AML_LOG_FORMAT, UTCFormatter

    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.set_name("aml_stdout")
    handler.setFormatter(UTCFormatter(fmt=AML_LOG_FORMAT))
    server_logger = logging.getLogger("azmlinfsrv")
    server_logger.setLevel(logging.INFO)
    for old in server_logger.handlers[:]:
        server_logger.removeHandler(old)
    server_logger.addHandler(handler)
    server_logger.propagate = False
    server_logger.disabled = False


def _alias_compat_modules():
    # docs/behaviour.md 4.8: the old azureml.contrib.services import paths resolve without an azureml package.
    from .api import aml_request, aml_response

    sys.modules["azureml.contrib.services.aml_request"] = aml_request
    sys.modules["azureml.contrib.services.aml_response"] = aml_response


def _entry_script(app_root):
    """AZUREML_ENTRY_SCRIPT, resolved against AML_APP_ROOT when relative (docs/behaviour.md 1.5); None for main.py."""
    entry_script = _env("AZUREML_ENTRY_SCRIPT")
    if entry_script and not os.path.isabs(entry_script):
        entry_script = os.path.join(app_root, entry_script)
    return entry_script or None


def _load_module(app_root, entry_script):
    if not entry_script:
        try:
            return importlib.import_module("main"), None
        except ModuleNotFoundError:
            lines = ["No score script found. Expected score script main.py.",
                     "Expected script to be found in PYTHONPATH: %s" % sys.path]
            if os.path.isdir(app_root):
                lines.append("Current contents of AML_APP_ROOT: %s" % sorted(os.listdir(app_root)))
            else:
                lines.append("The directory %s not an accessible directory in the container." % app_root)
            raise BootFailure("\n".join(lines))
    path = entry_script
    spec = _spec_from_file_location("entry_module", path, loader=_FreshSourceLoader("entry_module", path))
    module = _module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the entry script from its source every time, never from __pycache__.

    A reload must run what is on disk: a cached .pyc is trusted when the source's mtime (in whole
    seconds) and size match, so an edit of the same length within the same second would be missed.
    """

    def get_code(self, fullname):
        return self.source_to_code(self.get_data(self.path), self.path)


def _enable_faulthandler():
    """The Python stacks in the log when the worker dies of a fatal signal (as the reference) and when
    the arbiter, seeing a run() older than WORKER_TIMEOUT, sends SIGUSR1 before killing the worker."""
    faulthandler.enable(all_threads=True)
    faulthandler.register(_signal.SIGUSR1, all_threads=True, chain=False)


_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08


def run_parameters(run):
    """[(name, kind, has default)] as inspect.signature(run) has them, kind one of "positional_only",
    "positional_or_keyword", "var_positional", "keyword_only", "var_keyword".

    A plain function is read from its code object: importing inspect costs a worker's start more than
    the rest of its boot. Anything else (decorated with functools.wraps, partials, methods, callable
    objects) goes to inspect, which knows all their rules.
    """
    if type(run) is not types.FunctionType or hasattr(run, "__wrapped__") or hasattr(run, "__signature__"):
        import inspect

        kinds = {inspect.Parameter.POSITIONAL_ONLY: "positional_only",
                 inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
                 inspect.Parameter.VAR_POSITIONAL: "var_positional",
                 inspect.Parameter.KEYWORD_ONLY: "keyword_only",
                 inspect.Parameter.VAR_KEYWORD: "var_keyword"}
        return [(p.name, kinds[p.kind], p.default is not inspect.Parameter.empty)
                for p in inspect.signature(run).parameters.values()]
    code = run.__code__
    names = code.co_varnames
    positional = code.co_argcount
    keyword_only = code.co_kwonlyargcount
    defaults = run.__defaults__ or ()
    kw_defaults = run.__kwdefaults__ or {}
    first_default = positional - len(defaults)
    params = [(names[i], "positional_only" if i < code.co_posonlyargcount else "positional_or_keyword",
               i >= first_default) for i in range(positional)]
    at = positional + keyword_only
    if code.co_flags & _CO_VARARGS:
        params.append((names[at], "var_positional", False))
        at += 1
    params += [(names[i], "keyword_only", names[i] in kw_defaults) for i in range(positional, positional + keyword_only)]
    if code.co_flags & _CO_VARKEYWORDS:
        params.append((names[at], "var_keyword", False))
    return params


def _analyse_run(run):
    """docs/behaviour.md 4.3: returns ([(input parameter, has default)], whether request_headers is wanted)."""
    params = run_parameters(run)
    if any(kind not in ("positional_or_keyword", "keyword_only") for _, kind, _ in params):
        raise BootFailure("run() cannot accept positional-only arguments, *args, or **kwargs.")
    wants_headers = any(name == "request_headers" for name, _, _ in params)
    inputs = [(name, has_default) for name, _, has_default in params if name != "request_headers"]
    if not inputs:
        if wants_headers:
            raise BootFailure('run() needs to accept an argument other than "request_headers".')
        raise BootFailure("run() needs to accept an argument for input data.")
    return inputs, wants_headers


def _select_mode(run, inputs):
    from .api import aml_request

    raw = getattr(aml_request, "_rawHttpRequested", False)
    schema = _schema_util(run) is not None
    if raw and schema:
        raise BootFailure("run() cannot be decorated with both @rawhttp and @input_schema")
    if raw:
        user_script_logger.info(
            "run() is decorated with @rawhttp. Server will invoke it with the flask request object.")
        return "raw"
    if schema:
        user_script_logger.info(
            "run() is decorated with @input_schema. Server will invoke it with the following arguments: %s.",
            ", ".join(name for name, _ in inputs))
        return "object"
    user_script_logger.info("run() is not decorated. Server will invoke it with the input in JSON string.")
    return "json"


def _schema_util(run):
    """inference-schema's schema_util when run() is registered there (either decorator), else None."""
    schema_util = sys.modules.get("inference_schema.schema_util")
    if schema_util is None:
        return None
    try:
        return schema_util if schema_util.is_schema_decorated(run) else None
    except Exception:  # noqa: BLE001 - an older or odd inference-schema: treat run() as undecorated
        return None


def _schema_swagger_inputs(run):
    """(input schema, output schema, supported versions) from inference-schema, for a decorated run()."""
    schema_util = _schema_util(run)
    if schema_util is None:
        return None, None, _SWAGGER_VERSIONS
    input_schema = schema_util.get_input_schema(run)
    output_schema = schema_util.get_output_schema(run)
    versions = set(_SWAGGER_VERSIONS)
    for getter in ("get_supported_versions_for_input", "get_supported_versions_for_output"):
        if hasattr(schema_util, getter):
            declared = getattr(schema_util, getter)(run)
            if declared:
                versions &= {_SHORT_VERSION.get(str(v), str(v)) for v in declared}
    return input_schema, output_schema, tuple(v for v in _SWAGGER_VERSIONS if v in versions)


def _log_model_dir_tree(model_dir):
    if not model_dir or not os.path.isdir(model_dir):
        return
    lines = []

    def walk(folder, depth):
        for name in sorted(os.listdir(folder)):
            full = os.path.join(folder, name)
            is_dir = os.path.isdir(full)
            lines.append("    " * depth + name + ("/" if is_dir else ""))
            if is_dir:
                walk(full, depth + 1)

    walk(model_dir, 0)
    text = "\n".join(lines[:_TREE_LINE_LIMIT])
    if len(lines) > _TREE_LINE_LIMIT:
        text += "\nOutput Truncated. First %d lines shown." % _TREE_LINE_LIMIT
    logger.info("Model Directory Contents:\n%s", text)


_native_deadline_passed = None  # set by the native bridge, whose I/O thread sends SIGALRM at run()'s deadline


def _raise_timeout(signum, frame):
    # A SIGALRM that is not the running run()'s timeout (it came late, after that call returned, or from
    # the script's own signal.alarm) raises nothing.
    if _native_deadline_passed is not None and not _native_deadline_passed():
        return
    raise TimeoutError("Scoring timeout")


def boot(claim_error_report):
    """Loads the entry script and runs init(). Returns an Entry, or None after a boot failure.

    claim_error_report() is true for the one worker that reports a boot failure, so that N workers
    failing the same way print the traceback once.
    """
    config = ConfigFile()
    config.apply(_env("AML_APP_ROOT", _DEFAULT_APP_ROOT), _entry_script(_env("AML_APP_ROOT", _DEFAULT_APP_ROOT)))
    app_root = _env("AML_APP_ROOT", _DEFAULT_APP_ROOT)
    entry_script = _entry_script(app_root)
    stage = "config"
    _enable_faulthandler()
    try:
        _configure_logging(app_root, entry_script)
        if config.error is not None:
            raise config.error
        if config.extra_keys:
            logger.warning("Found extra keys in the config file that are not supported by the server.\n"
                           "Extra keys = %s", config.extra_keys)
        for name in ("AML_DBG_MODEL_INFO", "AML_DBG_RESOURCE_INFO"):
            if name in os.environ:
                logger.warning("The debuggability features have been removed. If you have a use case for them "
                               "please reach out to us.")
                break
        _validate_settings(config)
        scoring_timeout_ms = _read_scoring_timeout()
        stage = "debugger"
        _attach_debugger()
        stage = "load"
        if app_root not in sys.path:
            sys.path.append(app_root)
        source_dir = _env("AZUREML_SOURCE_DIRECTORY")
        if source_dir:
            sys.path.append(os.path.join(app_root, source_dir))
        _alias_compat_modules()
        _say("Initializing logger")
        from . import _print_hook

        _print_hook.install()
        cors_origins = _env("AML_CORS_ORIGINS")
        if cors_origins:
            logger.info("Enabling CORS for the following origins: %s",
                        ", ".join(o.strip() for o in cors_origins.split(",") if o.strip()))

        module, path = _load_module(app_root, entry_script)
        configure_if_imported()
        driver = getattr(module, "driver_module", None)
        if isinstance(driver, types.ModuleType) and hasattr(driver, "run"):
            user_script_logger.info("Found driver script at %s and the score script at %s",
                                    getattr(driver, "__file__", driver.__name__), path)
        else:
            driver = None
            user_script_logger.info("Found user script at %s", path or getattr(module, "__file__", "main"))
        where = path or getattr(module, "__file__", "main.py")
        for name in ("init", "run"):
            if not hasattr(driver if (driver and name == "run") else module, name):
                raise BootFailure("User script at %s does not have a %s() function defined." % (where, name))
        run = driver.run if driver else module.run
        inputs, wants_headers = _analyse_run(run)
        mode = _select_mode(run, inputs)

        stage = "init"
        user_script_logger.info("Invoking user's init function")
        module.init()
        user_script_logger.info("Users's init has completed successfully")
    except BaseException as error:  # noqa: B036 - any exception at boot is fatal, as in the reference
        if claim_error_report():
            _report_boot_failure(stage, error, entry_script)
        return None

    swaggers = build_swaggers(app_root, *_schema_swagger_inputs(run))
    if scoring_timeout_ms > 0:
        _signal.signal(_signal.SIGALRM, _raise_timeout)
    logger.info("Scoring timeout is set to %s", scoring_timeout_ms)
    return Entry(run, mode, inputs[0][0], wants_headers, scoring_timeout_ms, swaggers, inputs)


def _user_traceback(error):
    """The traceback without the server's own frames and importlib's, which only hide the script's line."""
    import traceback

    summary = traceback.TracebackException.from_exception(error)
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack
         if not frame.filename.startswith(_PACKAGE_DIR) and not frame.filename.startswith("<frozen importlib")])
    return "".join(summary.format()).rstrip("\n")


def _report_boot_failure(stage, error, entry_script):
    detail = _user_traceback(error)
    if stage == "config":
        if isinstance(error, BootFailure):
            _configuration_error([str(error)])
        else:
            logger.critical("Invalid config file!: %s", detail)
        return
    if stage == "debugger":
        logger.error("%s", error if isinstance(error, BootFailure) else detail)
        return
    if stage == "init":
        logger.error("User's init function failed")
        logger.error("Encountered Exception %s", detail)
        _log_model_dir_tree(_env("AZUREML_MODEL_DIR", ""))
        return
    if isinstance(error, BootFailure):
        logger.error("%s", error)
        return
    if isinstance(error, FileNotFoundError) and entry_script and error.filename == entry_script:
        logger.error("No such file or directory.")
    elif _is_sibling_import(error, entry_script):
        detail += ("\nHint: %s sits beside the entry script, but the entry script's folder is not on sys.path "
                   "(as in Azure ML). Set AML_APP_ROOT to that folder (or run the server from it), or set "
                   "AZUREML_SOURCE_DIRECTORY." % error.name)
    logger.error("Failed to load the entry script %s:\n%s", entry_script or "main.py", detail)


def _is_sibling_import(error, entry_script):
    if not isinstance(error, ModuleNotFoundError) or not error.name or not entry_script:
        return False
    folder = os.path.dirname(entry_script)
    top = error.name.split(".")[0]
    return os.path.exists(os.path.join(folder, top + ".py")) or os.path.isdir(os.path.join(folder, top))


# ---- swagger (docs/behaviour.md 5) ---------------------------------------------------------------------

_SWAGGER_VERSIONS = ("2", "3", "3.1")
_SHORT_VERSION = {"2.0": "2", "3.0": "3", "2": "2", "3": "3", "3.1": "3.1"}
_USER_SWAGGER_FILES = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.1.json",)}
_UNDECORATED_SCHEMA = {"type": "object", "example": {}}


# The undecorated documents as json.dumps writes them, placeholders kept: a worker serves them without
# importing json (and re). undecorated_swagger_text() makes them; tests/python checks the files agree.
_UNDECORATED_SWAGGER_FILES = {"2": "swagger2_undecorated.json", "3": "swagger3_undecorated.json",
                              "3.1": "swagger3.1_undecorated.json"}


def _swagger_substitutions():
    prefix = _env("SERVICE_PATH_PREFIX", "")
    return (("$SERVICE_NAME$", _env("SERVICE_NAME", "ML service")),
            ("$SERVICE_VERSION$", _env("SERVICE_VERSION", "1.0")),
            ("$PATH_PREFIX$", "/" + prefix.strip("/") if prefix else ""))


def _substitute(text, substitutions):
    for placeholder, value in substitutions:
        text = text.replace(placeholder, value)
    return text


def _swagger_from_template(version, input_schema, output_schema, substitutions):
    import json

    template_name = "swagger2_template.json" if version == "2" else "swagger3_template.json"
    with open(os.path.join(_PACKAGE_DIR, "swagger", template_name), encoding="utf-8") as f:
        document = json.loads(_substitute(f.read(), substitutions))
    schemas = document["definitions"] if version == "2" else document["components"]["schemas"]
    schemas["ServiceInput"] = input_schema
    schemas["ServiceOutput"] = output_schema
    if version == "3.1":
        document["openapi"] = "3.1.0"
    return document


def undecorated_swagger_text(version):
    """The content of the version's swagger*_undecorated.json."""
    return json_dumps(_swagger_from_template(version, _UNDECORATED_SCHEMA, _UNDECORATED_SCHEMA, ()))


def _needs_no_escaping(value):
    # json.dumps writes these characters as they are, and json.loads reads them back as they are.
    return all(" " <= c <= "~" and c not in '"\\' for c in value)


def build_swaggers(app_root, input_schema=None, output_schema=None, versions=_SWAGGER_VERSIONS):
    """The swagger documents served for each supported version, as bytes, built once at boot."""
    swagger_logger = get_logger("azmlinfsrv.swagger")  # made here, after init(), as the reference makes it
    swaggers = {}
    substitutions = _swagger_substitutions()
    plain = all(_needs_no_escaping(value) for _, value in substitutions)
    for version in versions:
        user_file = next((os.path.join(app_root, name) for name in _USER_SWAGGER_FILES[version]
                          if os.path.isfile(os.path.join(app_root, name))), None)
        if user_file:
            import json

            with open(user_file, encoding="utf-8") as f:
                text = json_dumps(json.load(f))
            swagger_logger.info("Loaded user's swagger file for version [%s] from %s", version, user_file)
        elif not input_schema and not output_schema and plain:
            # What json.dumps(json.loads(...)) of the substituted template gives, text for text.
            path = os.path.join(_PACKAGE_DIR, "swagger", _UNDECORATED_SWAGGER_FILES[version])
            with open(path, encoding="utf-8") as f:
                text = _substitute(f.read(), substitutions)
        else:
            text = json_dumps(_swagger_from_template(version, input_schema or _UNDECORATED_SCHEMA,
                                                     output_schema or _UNDECORATED_SCHEMA, substitutions))
        swaggers[version] = text.encode("utf-8")
    skipped = [v for v in _SWAGGER_VERSIONS if v not in swaggers]
    if not swaggers:
        swagger_logger.info("No swagger is prepared.")
    elif skipped:
        swagger_logger.info("Swaggers are prepared for versions [%s] and skipped for versions [%s].",
                            ", ".join(swaggers), ", ".join(skipped))
    else:
        swagger_logger.info("Swaggers are prepared for the following versions: [%s].", ", ".join(swaggers))
    return swaggers


# ---- the rare paths of a request ------------------------------------------------------------------


def json_dumps(value):
    """json.dumps, for the values the native encoder leaves to it (and for the rare paths here)."""
    import json

    return json.dumps(value)


def _json_or_text(value):
    import json

    try:
        return json.loads(value)
    except ValueError:
        return value


def query_to_json(query):
    """docs/behaviour.md 4.4: the query string as json.dumps of a dict; repeated keys become lists."""
    return json_dumps(query_to_dict(query))


def query_to_dict(query):
    import urllib.parse

    result = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True, errors="replace"):
        value = _json_or_text(value)
        if key in result:
            if isinstance(result[key], _QueryList):
                result[key].append(value)
            else:
                result[key] = _QueryList([result[key], value])
        else:
            result[key] = value
    return result


class _QueryList(list):
    """Marks lists made from repeated keys, so a JSON list value is not mistaken for one."""


class ClientError(Exception):
    """A request the script cannot be called with: answered with this status and message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _is_json_mimetype(content_type):
    mimetype = content_type.split(";")[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def object_arguments(entry, method, query, content_type, body):
    """Object mode (docs/behaviour.md 4.4): run()'s keyword arguments from the query (GET) or the JSON body."""
    if method == "GET":
        data = query_to_dict(query)
    else:
        if not _is_json_mimetype(content_type):
            raise ClientError(415, "Expects Content-Type to be application/json")
        if not body:
            raise ClientError(400, "POST body is empty. Expecting a JSON dictionary.")
        import json

        try:
            data = json.loads(body)
        except ValueError as error:
            raise ClientError(400, "POST body could not be decoded as JSON: %s" % error)
        if not isinstance(data, dict):
            raise ClientError(400, "POST body should be a JSON dictionary.")
    arguments = {}
    for name, has_default in entry.parameters:
        if name in data:
            arguments[name] = data[name]
        elif not has_default:
            raise ClientError(400, "A value is not provided for the %r parameter." % name)
    return arguments


def raw_request(method, target, headers, body, remote_addr, server_port, protocol):
    from ._raw_request import make_request

    return make_request(method, target, headers, body, remote_addr, server_port, protocol)


def headers_dict(pairs):
    """request_headers as Werkzeug shows them: Title-Case names, repeated headers joined by ", "."""
    result = {}
    for name, value in pairs:
        key = name.replace("_", "-").title()
        result[key] = result[key] + ", " + value if key in result else value
    return result


def log_exception(error):
    import traceback

    logger.error("Encountered Exception: %s", "".join(traceback.format_exception(error)).rstrip("\n"))


def log_unserialisable(error, output):
    log_exception(error)
    logger.error(
        "run() returned a %s, which json.dumps cannot encode. Return plain lists, dicts, numbers and strings "
        "(for numpy use .tolist()), or return an AMLResponse to send raw bytes.", type(output).__name__)


def warn_form_body(content_type):
    logger.warning(
        "A POST with Content-Type %s reaches an undecorated run() as an empty string, as in Azure ML. "
        "Send JSON with 'Content-Type: application/json' (curl: -H 'Content-Type: application/json'), "
        "or decorate run() with @rawhttp to read the form.", content_type)


# Where Response classes live. Only modules already imported are looked at: an object of a class whose
# module was never imported cannot exist, and importing flask here would cost every worker.
_RESPONSE_CLASSES = (("werkzeug.wrappers", "Response"), (__package__ + ".api._response_base", "Response"))


def is_response(output):
    """True for a flask/werkzeug Response (AMLResponse included), sent as-is (docs/behaviour.md 3.5)."""
    for module_name, name in _RESPONSE_CLASSES:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(output, getattr(module, name)):
            return True
    return False


_warned_dict_body = False


def response_parts(response):
    """A Response from run() as (status, reason, [(name, value)], body bytes or None, chunk iterator or None).

    docs/behaviour.md 3.5 and 4.9: a streamed body (an iterable that is not a list or tuple) is not joined here;
    the caller sends each item as its own chunk as the iterator yields it.
    """
    global _warned_dict_body
    logger.info("run() output is HTTP Response")
    if isinstance(getattr(response, "response", None), dict) and not _warned_dict_body:
        _warned_dict_body = True
        logger.warning(
            "run() returned an AMLResponse whose message is a dict without json_str=True: the client receives the "
            "dict's keys concatenated, as in Azure ML. Pass json_str=True to send the dict as JSON.")
    status = response.status_code
    status_text = str(getattr(response, "status", status))
    reason = status_text.split(" ", 1)[1] if " " in status_text else ""
    headers = [(k, str(v)) for k, v in response.headers.items() if k.lower() != "content-length"]
    if status >= 500:
        headers = [(k, v) for k, v in headers if k.lower() != "x-ms-run-function-failed"]
        headers.append(("x-ms-run-function-failed", "True"))
    if getattr(response, "is_streamed", False):
        return status, reason, headers, None, iter(response.iter_encoded())
    return status, reason, headers, response.get_data(), None
