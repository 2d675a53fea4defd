"""The server's loggers, without importing ``logging`` before the score script (or a library) does.

The stdlib logging module, with ``re``, ``traceback``, ``string`` and ``threading`` behind it, used to be
a third of a worker's start-up. A script that never imports logging cannot observe how the server's
lines were written, so until then each line is formatted here exactly as the packaged logging.json's
handler formats it and written to the same stream. The moment anything imports logging, the server's
loggers that exist by then are created in it, in the order the server made them, and the packaged
configuration is applied, before the importer goes on; from then on every line goes through those
Logger objects, so that the levels, handlers, filters and configurations a script sets apply as in the
reference.

Nothing is written natively unless the server armed it (``write_natively_until_imported``); the package
imported anywhere else (tests, tools) always logs through logging.
"""

import _thread
import os
import sys
import time

_INFO, _WARNING, _ERROR, _CRITICAL = 20, 30, 40, 50
_LEVEL_LETTER = {_INFO: "I", _WARNING: "W", _ERROR: "E", _CRITICAL: "C"}

_armed = False
_stream = None  # the stream the packaged handler writes to, captured at boot
_configure = None  # applies the packaged configuration, given that stream
_configuring = False  # by the thread holding _lock, which may come back through logging's import
_lock = _thread.RLock()
_loggers = {}  # name -> ServerLogger, in the order the server made them


def format_line(created, level, pid, name, message):
    """The packaged handler's line: UTCFormatter with "%(asctime)s %(levelname).1s [%(process)d]
    %(name)s - %(message)s", milliseconds truncated from a time.time() float as Python 3.11's
    LogRecord does."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created))
    return "%s,%03d %s [%d] %s - %s" % (stamp, int((created - int(created)) * 1000), _LEVEL_LETTER[level], pid,
                                        name, message)


def get_logger(name):
    """The server's logger of that name, made once, like logging.getLogger. Its logging.Logger is created
    now when logging is imported, else when it is; a configuration applied later finds it either way."""
    server_logger = _loggers.get(name)
    if server_logger is None:
        server_logger = _loggers[name] = ServerLogger(name)
        if "logging" in sys.modules:
            server_logger.logger = sys.modules["logging"].getLogger(name)
    return server_logger


class ServerLogger:
    """One of the server's loggers (``azmlinfsrv``, ``azmlinfsrv.user_script`` ...), with the methods the
    server calls. The arguments are logging's: a %-format and its values, formatted only when written."""

    def __init__(self, name):
        self.name = name
        self.logger = None  # the logging.Logger, bound once, as the server held it before

    def info(self, msg, *args):
        self._log(_INFO, msg, args)

    def warning(self, msg, *args):
        self._log(_WARNING, msg, args)

    def error(self, msg, *args):
        self._log(_ERROR, msg, args)

    def critical(self, msg, *args):
        self._log(_CRITICAL, msg, args)

    def _log(self, level, msg, args):
        if _armed:
            if "logging" not in sys.modules:
                written = False
                try:
                    message = str(msg) % args if args else str(msg)
                    # A write that raises has written nothing (the text is encoded first); logging then
                    # meets the same error and reports it as it would have.
                    _stream.write(format_line(time.time(), level, os.getpid(), self.name, message) + "\n")
                    written = True
                    _stream.flush()
                    return
                except Exception:  # noqa: BLE001
                    if written:  # never twice; logging would have reported the failed flush on stderr
                        return
            configure_if_imported()
        if self.logger is None:
            use_logging_now()
        # stacklevel: the record names the server's call site, as when it called logging itself.
        self.logger.log(level, msg, *args, stacklevel=3)


def use_logging_now():
    """Creates the server's loggers in logging, before a configuration that must find them is applied."""
    import logging  # noqa: PLC0415

    for server_logger in _loggers.values():
        if server_logger.logger is None:
            server_logger.logger = logging.getLogger(server_logger.name)


def write_natively_until_imported(stream, configure):
    """Arms native lines on ``stream`` until logging is imported; then ``configure(stream)`` runs
    right after logging's own module code, before the importer gets the module."""
    global _armed, _stream, _configure
    _armed, _stream, _configure = True, stream, configure
    if _ConfigureLoggingOnImport not in sys.meta_path:
        sys.meta_path.insert(0, _ConfigureLoggingOnImport)


def configure_if_imported():
    """Applies the packaged configuration now if logging was imported without the finder's doing (a
    finder ahead of it found logging, say): before the script's init() rather than at the next line."""
    if _armed and "logging" in sys.modules:
        # First wait for an import under way in another thread (it configures logging itself), so that
        # _lock is never held while waiting for logging's module lock: that thread takes _lock under it.
        import logging  # noqa: F401, PLC0415

        _configure_now()


def _configure_now():
    global _armed, _configuring
    with _lock:
        if not _armed or _configuring:
            return
        _configuring = True
        unbound = [server_logger for server_logger in _loggers.values() if server_logger.logger is None]
        try:
            if _ConfigureLoggingOnImport in sys.meta_path:
                sys.meta_path.remove(_ConfigureLoggingOnImport)
            use_logging_now()
            _configure(_stream)
            _armed = False  # only now: until then other threads wait on the lock, then find it configured
        except BaseException:
            # An import of logging that fails here (a scoring timeout in the middle, say) leaves it
            # unimported: the next one is configured again, with loggers of the module that stays.
            for server_logger in unbound:
                server_logger.logger = None
            if _ConfigureLoggingOnImport not in sys.meta_path:
                sys.meta_path.insert(0, _ConfigureLoggingOnImport)
            raise
        finally:
            _configuring = False


class _ConfigureLoggingOnImport:
    """A meta path finder that finds nothing itself: for ``logging``, it lets the finders behind it find
    the module and wraps the loader so that the packaged configuration follows the module's code."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "logging" or not _armed:
            return None
        import importlib._bootstrap as bootstrap  # noqa: PLC0415 - loaded at start-up, frozen

        behind = sys.meta_path[sys.meta_path.index(_ConfigureLoggingOnImport) + 1:]
        find_spec_legacy = getattr(bootstrap, "_find_spec_legacy", None)  # gone in Python 3.12
        for finder in behind:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(name, path, target)
            elif find_spec_legacy is not None:  # a finder with only the old find_module, which 3.11 still asks
                spec = find_spec_legacy(finder, name, path)
            else:
                continue
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ConfiguringLoader(spec.loader)
                return spec
        return None


class _ConfiguringLoader:
    """The real loader, with the packaged configuration applied after the module's code."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_filename, get_source, is_package, get_resource_reader ...
        if name == "loader":  # not set yet (copy.copy makes the object without __init__)
            raise AttributeError(name)
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader (importlib.reload, inspect and pkgutil look at it).
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _configure_now()
