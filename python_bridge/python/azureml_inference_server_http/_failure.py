"""A boot that failed, told once (docs/behaviour.md 2.3): the message for each stage, the traceback
without the server's own frames, the model folder's tree after an init() failure."""

import os

from ._config import BootFailure, _configuration_error, _env
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
