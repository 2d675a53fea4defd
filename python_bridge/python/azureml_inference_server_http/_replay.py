"""--replay (worker/replay.cpp): pdb at the terminal. breakpoint() in the script stops there, and with
--pdb so does an exception run() raises (post-mortem). pdb writes to its own file on the process's
stdout, not to sys.stdout, whose prints the server turns into log records (_print_hook)."""

import os
import sys


def _debugger():
    import pdb

    return pdb.Pdb(stdout=open(os.dup(sys.__stdout__.fileno()), "w", buffering=1, encoding="utf-8",
                                errors="backslashreplace"))


def _breakpoint(*args, **kwargs):
    _debugger().set_trace(sys._getframe(1))


def install():
    """breakpoint() stops at the terminal, unless PYTHONBREAKPOINT says otherwise."""
    if os.environ.get("PYTHONBREAKPOINT") is None:
        sys.breakpointhook = _breakpoint


def post_mortem(traceback):
    debugger = _debugger()
    debugger.reset()
    debugger.interaction(None, traceback)
