"""Routes score-script prints to the ``azmlinfsrv.print`` logger (docs/behaviour.md 6.4).

Output meant for stdout becomes one log record, so it gets the timestamped
format and reaches every handler of the logger; output meant for any other file
is left alone.
"""

import builtins
import sys

from ._lazy_logging import get_logger

_logger = get_logger("azmlinfsrv.print")
_original_print = None


def _print_to_logger(*objects, sep=" ", end="\n", file=None, flush=False):
    # Mirrors the reference exactly, quirks included: a falsy file counts as
    # stdout, and sep=None raises (the builtin would treat it as " "), so a
    # script that breaks there breaks here too.
    file = file or sys.stdout
    content = sep.join(map(str, objects))
    if file is sys.stdout:
        _logger.info(content)
    else:
        _original_print(*objects, sep=sep, end=end, file=file, flush=flush)


# What functools.wraps(builtins.print) sets, without importing functools (and collections) at boot.
for _name in ("__module__", "__name__", "__qualname__", "__doc__"):
    setattr(_print_to_logger, _name, getattr(builtins.print, _name))
_print_to_logger.__wrapped__ = builtins.print
del _name


def install():
    """Replace builtins.print; calling it again is a no-op."""
    global _original_print
    if builtins.print is _print_to_logger:
        # Capturing the hook as the "original" would make non-stdout prints recurse.
        return
    _original_print = builtins.print
    builtins.print = _print_to_logger


def uninstall():
    """Put back the print that install() replaced."""
    global _original_print
    if builtins.print is _print_to_logger and _original_print is not None:
        builtins.print = _original_print
        _original_print = None


def is_installed():
    return builtins.print is _print_to_logger
