"""A boot that failed, told once (docs/behaviour.md 2.3): the message for each stage, the traceback
without the server's own frames, the model folder's tree after an init() failure."""

import os

from ._config import BootFailure, UserScriptError, _configuration_error, _env
from ._lazy_logging import get_logger

logger = get_logger("azmlinfsrv")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_TREE_LINE_LIMIT = 200


def _walk_path(path, depth=0):
    """The reference's tree lines: the folder's own name with a trailing slash, then its entries sorted,
    four spaces more per level, folders with a slash. A folder that cannot be listed ends its branch."""
    path = os.path.normpath(path)
    line = "    " * depth + os.path.basename(path.rstrip(os.sep))
    if not os.path.isdir(path):
        yield line
        return
    yield line + os.sep
    try:
        children = sorted(os.listdir(path))
    except OSError:
        return
    for child in children:
        yield from _walk_path(os.path.join(path, child), depth + 1)


def _log_model_dir_tree(model_dir):
    """After an init() failure (docs/behaviour.md 2.3): one log line per entry, at most 200."""
    if not model_dir or not os.path.exists(model_dir):
        return
    logger.info("Model Directory Contents:")
    tree = _walk_path(model_dir)
    for count, line in enumerate(tree, 1):
        logger.info("%s", line)
        if count == _TREE_LINE_LIMIT:
            break
    if next(tree, None):
        logger.info("Output Truncated. First %d lines shown.", _TREE_LINE_LIMIT)


def _is_script_frame(frame):
    return not frame.filename.startswith(_PACKAGE_DIR) and not frame.filename.startswith("<frozen importlib")


def _user_traceback(error):
    """The traceback without the server's own frames and importlib's, which only hide the script's line."""
    import traceback

    summary = traceback.TracebackException.from_exception(error)
    summary.stack = traceback.StackSummary.from_list([frame for frame in summary.stack if _is_script_frame(frame)])
    return "".join(summary.format()).rstrip("\n")


def _is_library_file(filename):
    import sysconfig

    if "/site-packages/" in filename or "/dist-packages/" in filename:
        return True
    return any(filename.startswith(sysconfig.get_path(name) + os.sep) for name in ("stdlib", "platstdlib"))


def failure_detail(error):
    """A failure as data, for --dev's answers and --capture's files (docs/debugging.md): the exception's
    type and message, where it happened (the innermost of the script's frames, or a SyntaxError's own
    spot), the script's frames outermost first, and the traceback as the log shows it. JSON text."""
    import json
    import traceback

    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else "%s.%s" % (kind.__module__, kind.__qualname__)
    frames = [{"file": frame.filename, "line": frame.lineno, "function": frame.name}
              for frame in traceback.extract_tb(error.__traceback__) if _is_script_frame(frame)]
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still has a type and frames
        message = "<str() of the exception failed>"
    detail = {"type": name, "message": message, "file": None, "line": None}
    if isinstance(error, SyntaxError) and error.filename:
        detail["file"], detail["line"] = error.filename, error.lineno
    elif frames:
        # The innermost of the application's own frames: the line to edit, not json's or numpy's.
        own = [frame for frame in frames if not _is_library_file(frame["file"])] or frames
        detail["file"], detail["line"] = own[-1]["file"], own[-1]["line"]
    detail["frames"] = frames
    detail["traceback"] = _user_traceback(error)
    return json.dumps(detail, default=str)


# The reference wraps the script's exception in one of its own (raise ... from ex) and logs the traceback
# of that one, whose last line log readers key their alerts on. Ours keeps the script's frames only and
# ends the same way: the chaining sentence, that last line, and the empty line its message ends with.
_REFERENCE_EXCEPTION_MODULE = "azureml_inference_server_http.server.user_script."
USER_SCRIPT_EXCEPTION = ("UserScriptException", "Caught an unhandled exception from the user script")
USER_SCRIPT_IMPORT_EXCEPTION = ("UserScriptImportException",
                                "Failed to import user script because it raised an unhandled exception")


def reference_exception_line(name, message):
    """The last line of the reference's traceback for its exception `name`, with the newline after it."""
    return "%s%s: %s\n" % (_REFERENCE_EXCEPTION_MODULE, name, message)


def user_traceback_as_reference(error, reference_exception):
    """The script's traceback, then the reference's exception that wraps it (docs/behaviour.md 6.3)."""
    return (_user_traceback(error) + "\n\nThe above exception was the direct cause of the following exception:\n\n"
            + reference_exception_line(*reference_exception))


def _report_boot_failure(stage, error, entry_script):
    if stage == "config":
        if isinstance(error, BootFailure):
            _configuration_error([str(error)])
        else:
            logger.critical("Invalid config file!: %s", _user_traceback(error))
        return
    if stage == "debugger":
        logger.error("%s", error if isinstance(error, BootFailure) else _user_traceback(error))
        return
    if stage == "init":
        logger.error("User's init function failed")
        logger.error("Encountered Exception %s", user_traceback_as_reference(error, USER_SCRIPT_EXCEPTION))
        _log_model_dir_tree(_env("AZUREML_MODEL_DIR", ""))
        return
    if isinstance(error, UserScriptError):
        logger.error("%s", reference_exception_line("UserScriptError", error))
        if getattr(error, "hint", None):  # the function the script meant (_script.near_name)
            logger.error("%s", error.hint)
        return
    if isinstance(error, BootFailure):
        for line in str(error).split("\n"):  # the reference logs each of these lines as its own record
            logger.error("%s", line)
        return
    header = "Failed to load the entry script %s:" % (entry_script or "main.py")
    if isinstance(error, FileNotFoundError) and entry_script and error.filename == entry_script:
        logger.error("No such file or directory.")
    elif _is_sibling_import(error, entry_script):
        header += ("\nHint: %s sits beside the entry script, but the entry script's folder is not on sys.path "
                   "(as in Azure ML). Set AML_APP_ROOT to that folder (or run the server from it), or set "
                   "AZUREML_SOURCE_DIRECTORY." % error.name)
    logger.error("%s\n%s", header, user_traceback_as_reference(error, USER_SCRIPT_IMPORT_EXCEPTION))


def _is_sibling_import(error, entry_script):
    if not isinstance(error, ModuleNotFoundError) or not error.name or not entry_script:
        return False
    folder = os.path.dirname(entry_script)
    top = error.name.split(".")[0]
    return os.path.exists(os.path.join(folder, top + ".py")) or os.path.isdir(os.path.join(folder, top))


class LoadFailure:
    """A script that failed to load or whose init() raised, kept by a worker that serves anyway (--reload,
    --dev): ``body`` is the JSON of the 503 that /score answers until an edit loads (docs/debugging.md)."""

    def __init__(self, stage, error, entry_script):
        import json

        detail = json.loads(failure_detail(error))
        if isinstance(error, UserScriptError):  # raised by the server about the script, not in it
            detail["type"], detail["file"], detail["traceback"] = "UserScriptError", entry_script, str(error)
        what = "init() raised" if stage == "init" else "The entry script failed to load"
        where = ""
        if detail["file"]:
            where = " at %s, line %s" % (detail["file"], detail["line"])
        elif entry_script:
            where = " (%s)" % entry_script
        if isinstance(error, UserScriptError):
            message = "%s: %s" % (what, error)
            if getattr(error, "hint", None):  # the function the script meant (_script.near_name)
                message += " " + error.hint
        else:
            message = "%s%s: %s: %s" % (what, where, detail["type"], detail["message"])
        message += "%s Fix it and save: the server reloads it. Until then /score answers 503." % (
            "" if message.endswith((".", "!", "?")) else ".")
        self.body = json.dumps({"message": message, "stage": stage, "error": detail})
