"""The worker's Python half: the boot, once per worker.

The native bridge calls ``boot()`` (configuration, logging, the debugger, loading the entry script,
analysing run(), calling init(), the swagger documents), then calls run() itself on the hot path; the
rare paths of a request are in _requests.py. Messages and their order follow docs/behaviour.md 2.2,
2.3 and 4.1-4.3. The concerns live in their own modules: _config (settings, config.json), _script
(loading the script, run()'s parameters and mode), _failure (reporting a failed boot), _swagger.
"""

import _signal  # signal's functions without its enums (signal.py imports enum)
import _thread  # threading's base, which costs nothing to import
import faulthandler
import os
import sys
import types

from ._config import (_DEFAULT_APP_ROOT, BootFailure, ConfigFile, UserScriptError, _entry_script, _env,
                      _read_scoring_timeout, _validate_settings)
from ._failure import _report_boot_failure
from ._lazy_logging import configure_if_imported, get_logger, use_logging_now, write_natively_until_imported
from ._script import (_analyse_run, _load_module, _schema_swagger_inputs, _select_mode, near_name,
                      warn_required_beyond_input)
from ._swagger import build_swaggers

# Not imported here or in the modules above: logging, json, traceback, inspect, logging.config,
# importlib.util and urllib.parse, which (with re and enum behind them) cost a worker more start-up
# time than the rest of its boot. Each is imported where a rare path needs it; logging is configured
# when the script imports it (_lazy_logging).

logger = get_logger("azmlinfsrv")
user_script_logger = get_logger("azmlinfsrv.user_script")


class Entry:
    """What the native side needs to serve: run() and how to call it."""

    def __init__(self, run, mode, input_name, wants_headers, scoring_timeout_ms, swaggers, parameters):
        # AML_CORS_ORIGINS from the environment or config.json, for the native side (CORS is native)
        self.cors_origins = _env("AML_CORS_ORIGINS")
        self.parameters = parameters  # object mode: [(name, default or _script.NO_DEFAULT)] of run()'s inputs
        self.swaggers = swaggers  # {"2": bytes, "3": bytes, "3.1": bytes}, the versions this script supports
        self.run = run
        self.mode = mode  # "json", "raw" or "object"
        self.input_name = input_name
        self.wants_headers = wants_headers
        self.scoring_timeout_ms = scoring_timeout_ms


# A slow init() (a large model loading) says every this many seconds that it is still running, so that
# a person watching a silent terminal knows the worker is not stuck at start (docs/debugging.md).
SLOW_INIT_NOTICE_S = 10


def _call_init(init):
    done = _thread.allocate_lock()
    done.acquire()
    pid = os.getpid()

    def notice():
        waited = 0
        while not done.acquire(timeout=SLOW_INIT_NOTICE_S):
            waited += SLOW_INIT_NOTICE_S
            user_script_logger.info("init() still running after %d s (pid %d)", waited, pid)

    _thread.start_new_thread(notice, ())
    try:
        init()
    finally:
        done.release()


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
    # debugpy prints its own traceback when nobody listens, before it raises: held back here, and only
    # written out when the connection works after all (then it is whatever else debugpy said).
    import io

    said, sys.stderr = sys.stderr, io.StringIO()
    try:
        debugpy.connect(port)
    except OSError as error:
        raise BootFailure(
            "AZUREML_DEBUG_PORT=%d is set but no debugger listens on 127.0.0.1:%d (%s). Start your IDE's debug "
            "listener on that port first, then this server: in VS Code, a launch configuration with "
            '"request": "attach" and "listen": {"host": "127.0.0.1", "port": %d}, started with Run > Start '
            "Debugging. Or unset AZUREML_DEBUG_PORT to run without a debugger."
            % (port, port, error.strerror or error, port)) from None
    finally:
        held, sys.stderr = sys.stderr.getvalue(), said
    if held:
        sys.stderr.write(held)
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


def _enumerate_models():
    """The reference's App Insights client lists the model ids at start, telemetry on or off, and logs what
    goes wrong (docs/behaviour.md 2.2): the model folder unset or missing, or laid out otherwise than
    <model>/<version> (a folder of files, as --model_dir usually names locally) unless it ends in a version."""
    model_dir = _env("AZUREML_MODEL_DIR")
    trace = get_logger("azmlinfsrv.trace")
    if not model_dir or not os.path.exists(model_dir):
        trace.warning("Model directory is not set or does not exist: %s", model_dir)
        return
    if os.path.basename(model_dir).isdigit():
        return
    try:
        for model in os.listdir(model_dir):
            [int(version) for version in os.listdir(os.path.join(model_dir, model))]
    except Exception:  # as the reference: its logger.exception
        import traceback

        trace.error("Error while fetching model IDs\n%s", traceback.format_exc().rstrip("\n"))


def _enable_faulthandler():
    """The Python stacks in the log when the worker dies of a fatal signal (as the reference) and when
    the arbiter, seeing a run() older than WORKER_TIMEOUT, sends SIGUSR1 before killing the worker."""
    faulthandler.enable(all_threads=True)
    faulthandler.register(_signal.SIGUSR1, all_threads=True, chain=False)


def _log_thread_exception(args):
    """An exception that ends one of the script's threads: an ERROR record naming the thread, in the log
    with everything else, rather than threading's plain print to stderr."""
    if args.exc_type is SystemExit:  # as threading's own hook: a thread may end itself that way
        return
    import traceback

    name = args.thread.name if args.thread is not None else "%d" % _thread.get_ident()
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)).rstrip("\n")
    logger.error("Exception in thread %s (pid %d):\n%s", name, os.getpid(), text)


def _route_thread_exceptions():
    # threading takes its default hook from _thread when it is first imported (by the script, usually
    # after this): setting it there costs the boot no import of threading.
    _thread._excepthook = _log_thread_exception
    threading = sys.modules.get("threading")
    if threading is not None and threading.excepthook is threading.__excepthook__:
        threading.excepthook = _log_thread_exception


_native_deadline_passed = None  # set by the native bridge, whose I/O thread sends SIGALRM at run()'s deadline


def _raise_timeout(signum, frame):
    # A SIGALRM that is not the running run()'s timeout (it came late, after that call returned, or from
    # the script's own signal.alarm) raises nothing.
    if _native_deadline_passed is not None and not _native_deadline_passed():
        return
    error = TimeoutError("Scoring timeout")
    error._scoring_timeout = True  # not the script's own TimeoutError: the log says how to give it longer
    raise error


def boot(claim_error_report, keep_load_failure=False):
    """Loads the entry script and runs init(). Returns an Entry, or None after a boot failure.

    claim_error_report() is true for the one worker that reports a boot failure, so that N workers
    failing the same way print the traceback once. keep_load_failure (--reload, --dev): a script that
    fails to load, or whose init() raises, returns a _failure.LoadFailure instead of None, which the
    worker serves as a 503 until an edit reloads it.
    """
    config = ConfigFile()
    config.apply(_env("AML_APP_ROOT", _DEFAULT_APP_ROOT), _entry_script(_env("AML_APP_ROOT", _DEFAULT_APP_ROOT)))
    app_root = _env("AML_APP_ROOT", _DEFAULT_APP_ROOT)
    entry_script = _entry_script(app_root)
    stage = "config"
    _enable_faulthandler()
    _route_thread_exceptions()
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
        logger.info("Starting up app insights client")  # the reference's line; nothing is exported (differences.md)
        _enumerate_models()
        cors_origins = _env("AML_CORS_ORIGINS")
        if cors_origins:
            logger.info("Enabling CORS for the following origins: %s",
                        ", ".join(o.strip() for o in cors_origins.split(",") if o.strip()))

        module, path = _load_module(app_root, entry_script)
        configure_if_imported()
        # docs/behaviour.md 4.1, in the reference's order: the entry module needs init() and run() (even when
        # a driver module's run() is the one called), then the line naming the script(s).
        where = path or getattr(module, "__file__", "main.py")
        for name in ("init", "run"):
            if not hasattr(module, name):
                error = UserScriptError("User script at %s does not have a %s() function defined." % (where, name))
                meant = near_name(module, name)
                if meant:
                    error.hint = ("%s defines %s(); the server calls %s(). Rename it to %s(), or add %s %s() that "
                                  "calls it." % (os.path.basename(where), meant, name, name,
                                                 "an" if name == "init" else "a", name))
                raise error
        driver = getattr(module, "driver_module", None)
        if isinstance(driver, types.ModuleType) and hasattr(driver, "run"):
            # The entry module is the driver script; the module it names holds the score script's run().
            user_script_logger.info("Found driver script at %s and the score script at %s",
                                    where, getattr(driver, "__file__", driver.__name__))
            run = driver.run
        else:
            user_script_logger.info("Found user script at %s", where)
            run = module.run
        inputs, wants_headers = _analyse_run(run)
        mode = _select_mode(run, inputs)
        warn_required_beyond_input(run, inputs, mode, wants_headers)

        stage = "init"
        user_script_logger.info("Invoking user's init function")
        _call_init(module.init)
        user_script_logger.info("Users's init has completed successfully")
    except BaseException as error:  # noqa: B036 - any exception at boot is fatal, as in the reference
        reporting = claim_error_report()
        if reporting:
            _report_boot_failure(stage, error, entry_script)
        if keep_load_failure and stage in ("load", "init"):  # what an edit of the script can fix
            from ._failure import LoadFailure

            failure = LoadFailure(stage, error, entry_script)
            if reporting:
                    logger.warning("The workers keep serving although the script failed to load (--reload): /score "
                               "answers 503 with the error above until a saved edit loads.")
            return failure
        return None

    swaggers = build_swaggers(app_root, *_schema_swagger_inputs(run))
    if scoring_timeout_ms > 0:
        _signal.signal(_signal.SIGALRM, _raise_timeout)
    logger.info("Scoring timeout is set to %s", scoring_timeout_ms)
    return Entry(run, mode, inputs[0][0], wants_headers, scoring_timeout_ms, swaggers, inputs)
