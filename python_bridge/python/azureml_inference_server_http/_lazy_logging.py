"""The server's loggers, without importing ``logging`` before the score script (or a library) does.

The stdlib logging module, with ``re``, ``traceback``, ``string`` and ``threading`` behind it, used to be
a third of a worker's start-up. A script that never imports logging cannot observe how the server's
lines were written, so until then each line is formatted here exactly as the packaged logging.json's
handler formats it and written to the same stream. The moment anything imports logging, the packaged
configuration is applied to it, before the importer goes on; from then on every line goes through
logging, so that the levels, handlers and filters a script sets apply as in the reference.

Nothing is written natively unless the server armed it (``write_natively_until_imported``); the package
imported anywhere else (tests, tools) always logs through logging.
"""

import os
import sys
import time

_INFO, _WARNING, _ERROR, _CRITICAL = 20, 30, 40, 50
_LEVEL_LETTER = {_INFO: "I", _WARNING: "W", _ERROR: "E", _CRITICAL: "C"}

_stream = None  # the stdout the packaged handler would write to; None: every line goes through logging
_configure = None  # applies the packaged configuration, given that stream
_names = []  # the loggers stood in for, created in logging when it loads, as an eager configuration did


def format_line(created, level, pid, name, message):
    """The packaged handler's line: UTCFormatter with "%(asctime)s %(levelname).1s [%(process)d]
    %(name)s - %(message)s", milliseconds truncated as logging.LogRecord truncates them."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created))
    return "%s,%03d %s [%d] %s - %s" % (stamp, int((created - int(created)) * 1000), _LEVEL_LETTER[level], pid,
                                        name, message)


class ServerLogger:
    """One of the server's loggers (``azmlinfsrv``, ``azmlinfsrv.user_script`` ...), with the methods the
    server calls. The arguments are logging's: a %-format and its values, formatted only when written."""

    def __init__(self, name):
        self.name = name
        _names.append(name)

    def info(self, msg, *args):
        self._log(_INFO, msg, args)

    def warning(self, msg, *args):
        self._log(_WARNING, msg, args)

    def error(self, msg, *args):
        self._log(_ERROR, msg, args)

    def critical(self, msg, *args):
        self._log(_CRITICAL, msg, args)

    def _log(self, level, msg, args):
        if _stream is not None and "logging" not in sys.modules:
            try:
                message = str(msg) % args if args else str(msg)
                line = format_line(time.time(), level, os.getpid(), self.name, message)
                _stream.write(line + "\n")
                _stream.flush()
                return
            except Exception:  # noqa: BLE001 - logging's own handling of a bad record is what the script sees
                pass
        import logging  # noqa: PLC0415 - configures it first when the server armed native lines

        _configure_if_armed()
        # stacklevel: the record names the server's call site, as when it called logging itself.
        logging.getLogger(self.name).log(level, msg, *args, stacklevel=3)


def write_natively_until_imported(stream, configure):
    """Arms native lines on ``stream`` until logging is imported; then ``configure(stream)`` runs
    right after logging's own module code, before the importer gets the module."""
    global _stream, _configure
    _stream, _configure = stream, configure
    sys.meta_path.insert(0, _ConfigureLoggingOnImport)


def is_armed():
    return _stream is not None


def _configure_if_armed():
    global _stream, _configure
    if _stream is None:
        return
    stream, configure = _stream, _configure
    _stream = _configure = None
    if _ConfigureLoggingOnImport in sys.meta_path:
        sys.meta_path.remove(_ConfigureLoggingOnImport)
    import logging  # noqa: PLC0415

    for name in _names:
        logging.getLogger(name)
    configure(stream)


class _ConfigureLoggingOnImport:
    """A meta path finder that finds nothing itself: for ``logging``, it lets the finders behind it find
    the module and wraps the loader so that the packaged configuration follows the module's code."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "logging" or _stream is None:
            return None
        behind = sys.meta_path[sys.meta_path.index(_ConfigureLoggingOnImport) + 1:]
        for finder in behind:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ConfiguringLoader(spec.loader)
                return spec
        return None


class _ConfiguringLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader (importlib.reload, inspect and pkgutil look at it).
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _configure_if_armed()
