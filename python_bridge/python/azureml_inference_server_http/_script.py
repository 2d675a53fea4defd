"""The entry script: loading it as the reference does (docs/behaviour.md 4.1), and what the server reads
of its run(): the parameters, and the input mode its decorators select (4.3)."""

import importlib
import importlib.machinery
import os
import sys
import types

from ._config import BootFailure, UserScriptError
from ._lazy_logging import get_logger
from ._swagger import _SWAGGER_VERSIONS, _VERSION_ALIASES

# importlib.util's two functions the boot needs are these (the same objects; tests/python checks it),
# without the contextlib import that importlib.util brings.
_spec_from_file_location = importlib._bootstrap_external.spec_from_file_location
_module_from_spec = importlib._bootstrap.module_from_spec

user_script_logger = get_logger("azmlinfsrv.user_script")


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


_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08


class _NoDefault:
    """What run_parameters gives for a parameter without a default (inspect.Parameter.empty's role)."""

    def __repr__(self):
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()


def run_parameters(run):
    """[(name, kind, default)] as inspect.signature(run) has them, kind one of "positional_only",
    "positional_or_keyword", "var_positional", "keyword_only", "var_keyword", default NO_DEFAULT for a
    parameter without one.

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
        return [(p.name, kinds[p.kind], NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
                for p in inspect.signature(run).parameters.values()]
    code = run.__code__
    names = code.co_varnames
    positional = code.co_argcount
    keyword_only = code.co_kwonlyargcount
    defaults = run.__defaults__ or ()
    kw_defaults = run.__kwdefaults__ or {}
    first_default = positional - len(defaults)
    params = [(names[i], "positional_only" if i < code.co_posonlyargcount else "positional_or_keyword",
               defaults[i - first_default] if i >= first_default else NO_DEFAULT) for i in range(positional)]
    at = positional + keyword_only
    if code.co_flags & _CO_VARARGS:
        params.append((names[at], "var_positional", NO_DEFAULT))
        at += 1
    params += [(names[i], "keyword_only", kw_defaults.get(names[i], NO_DEFAULT))
               for i in range(positional, positional + keyword_only)]
    if code.co_flags & _CO_VARKEYWORDS:
        params.append((names[at], "var_keyword", NO_DEFAULT))
    return params


def _analyse_run(run):
    """docs/behaviour.md 4.3: returns ([(input parameter, default or NO_DEFAULT)], whether request_headers is
    wanted)."""
    params = run_parameters(run)
    if any(kind not in ("positional_or_keyword", "keyword_only") for _, kind, _ in params):
        raise UserScriptError("run() cannot accept positional-only arguments, *args, or **kwargs.")
    wants_headers = any(name == "request_headers" for name, _, _ in params)
    inputs = [(name, default) for name, _, default in params if name != "request_headers"]
    if not inputs:
        if wants_headers:
            raise UserScriptError('run() needs to accept an argument other than "request_headers".')
        raise UserScriptError("run() needs to accept an argument for input data.")
    return inputs, wants_headers


# Names a script meant as init() or run(), seen in scripts written for other servers or by hand.
_NEAR_NAMES = {
    "init": ("initialize", "initialise", "load", "load_model", "setup", "set_up", "init_model", "start"),
    "run": ("predict", "score", "main", "inference", "infer", "run_inference", "scoring", "handle", "handler",
            "process", "forward", "predict_fn", "transform"),
}


def near_name(module, wanted):
    """A function of the script's own that looks meant as init() or run() (another case, a usual name of
    another server, a typo), or None."""
    own = [name for name, value in vars(module).items()
           if callable(value) and getattr(value, "__module__", None) == module.__name__ and not name.startswith("_")]
    for name in own:
        if name.lower() == wanted or name in _NEAR_NAMES[wanted]:
            return name
    import difflib

    close = difflib.get_close_matches(wanted, own, n=1, cutoff=0.75)
    return close[0] if close else None


def warn_required_beyond_input(run, inputs, mode, wants_headers):
    """A run() that needs more than the server gives (json and raw modes pass the input alone) fails on
    every request with a TypeError: say so at load, naming them."""
    if mode == "object":  # inference-schema fills each parameter from the body
        return
    extra = [name for name, default in inputs[1:] if default is NO_DEFAULT]
    if not extra:
        return
    given = inputs[0][0] + (" and request_headers" if wants_headers else "")
    user_script_logger.warning(
        "run() requires %s beyond its input, but the server passes only %s: every request will fail with a "
        "TypeError. Give %s a default value, or read %s from the input.",
        ", ".join(extra), given, "them" if len(extra) > 1 else "it", "them" if len(extra) > 1 else "it")


def _select_mode(run, inputs):
    from .api import aml_request

    raw = getattr(aml_request, "_rawHttpRequested", False)
    schema = _schema_util(run) is not None
    if raw and schema:
        raise UserScriptError("run() cannot be decorated with both @rawhttp and @input_schema")
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
    """(input schema, output schema, the swagger versions generated documents are made for).

    The versions are the reference's rule (docs/behaviour.md 4.10): those inference-schema's
    get_supported_versions(run) names, "2.0" standing for "2" and "3.0" for "3"; all three for an
    undecorated run(). A user's swagger file is served whatever this says (_swagger.build_swaggers)."""
    schema_util = _schema_util(run)
    if schema_util is None:
        return None, None, _SWAGGER_VERSIONS
    input_schema = schema_util.get_input_schema(run)
    output_schema = schema_util.get_output_schema(run)
    get_supported_versions = getattr(schema_util, "get_supported_versions", None)
    if get_supported_versions is None:
        return input_schema, output_schema, _SWAGGER_VERSIONS
    declared = {str(v) for v in get_supported_versions(run)}
    return input_schema, output_schema, tuple(v for v in _SWAGGER_VERSIONS
                                              if any(alias in declared for alias in _VERSION_ALIASES[v]))
