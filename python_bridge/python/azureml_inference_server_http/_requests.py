"""The rare paths of a request, which the native bridge hands back to Python: the GET query as JSON,
object mode's keyword arguments and its client errors, the raw request, request_headers, Response
objects, the result json.dumps must encode, and the log lines of failures."""

import sys

from ._lazy_logging import get_logger

logger = get_logger("azmlinfsrv")


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
    # Every parameter by keyword, a default included when the request leaves it out, as the reference calls
    # run(): inference-schema's decorator looks for a parameter it converts among the positional arguments
    # when it is not a keyword one, and fails (IndexError) when it is in neither.
    from ._script import NO_DEFAULT

    arguments = {}
    for name, default in entry.parameters:
        value = data.get(name, default)
        if value is NO_DEFAULT:
            raise ClientError(400, "A value is not provided for the %r parameter." % name)
        arguments[name] = value
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


# Set at boot for --dev and --capture: log_run_exception then returns the failure as data (_failure.failure_detail).
want_failure_detail = False
# Set at boot for --replay --pdb: log_run_exception then stops in pdb where run() raised.
post_mortem = False


def log_run_exception(error, scoring_timeout_ms):
    """run() raised (docs/behaviour.md 3.5): the script's traceback, ending as the reference's does with the
    exception it wraps the script's in (UserScriptTimeout for a TimeoutError, else UserScriptException).
    Returns the failure detail when the boot asked for it, else None."""
    from ._failure import USER_SCRIPT_EXCEPTION, _user_traceback, user_traceback_as_reference

    if isinstance(error, TimeoutError):
        wrapper = ("UserScriptTimeout",
                   "Script failed to finish execution within the allocated time: %sms" % scoring_timeout_ms)
        text = user_traceback_as_reference(error, wrapper)
    elif isinstance(error, Exception):
        text = user_traceback_as_reference(error, USER_SCRIPT_EXCEPTION)
    else:  # SystemExit, KeyboardInterrupt: the reference does not wrap them
        text = _user_traceback(error)
    logger.error("Encountered Exception: %s", text)
    if getattr(error, "_scoring_timeout", False):
        logger.warning("run() was stopped at the scoring timeout of %s ms. If it needs longer, raise "
                       "SCORING_TIMEOUT_MS (milliseconds, in the environment or config.json).", scoring_timeout_ms)
    if post_mortem:
        from . import _replay

        _replay.post_mortem(error.__traceback__)
    if want_failure_detail:
        from ._failure import failure_detail

        return failure_detail(error)
    return None


_JSON_SCALARS = (str, int, float, bool, type(None))

# What to do with a value json.dumps cannot encode, by its type's name (module.qualname or qualname).
_FIXES = {
    "set": "list(...)", "frozenset": "list(...)", "bytes": ".decode() (or an AMLResponse for raw bytes)",
    "bytearray": ".decode() (or an AMLResponse for raw bytes)", "numpy.ndarray": ".tolist()",
    "pandas.core.frame.DataFrame": ".to_dict(orient=\"records\")", "pandas.core.series.Series": ".tolist()",
    "datetime.datetime": ".isoformat()", "datetime.date": ".isoformat()", "decimal.Decimal": "float(...)",
    "generator": "list(...) (or an AMLResponse to stream it)",
}


def _type_name(value):
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _first_unencodable(value, path, seen, depth=0):
    """(path, value, what) of the first part of value json.dumps cannot encode, walking it as json.dumps
    does; None when every part is encodable (then the error came from elsewhere, a cycle say)."""
    if isinstance(value, _JSON_SCALARS) or depth > 200 or id(value) in seen:
        return None
    if isinstance(value, (list, tuple, dict)):
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict) and not isinstance(key, _JSON_SCALARS):
                return (path or "the result", key, "a key")
            where = f"{path}[{key}]" if not isinstance(value, dict) else f"{path}.{key}" if path else str(key)
            found = _first_unencodable(item, where, seen, depth + 1)
            if found:
                return found
        return None
    return (path, value, "a value")


def log_unserialisable(error, output):
    """The traceback, then what cannot be encoded, where, and the usual fix: a result is often a dict
    of many parts, and the one that is a set or an array is what the reader needs to find."""
    log_exception(error)
    found = _first_unencodable(output, "", set())
    if found is None or not found[0]:
        what = f"run() returned a {_type_name(output)}, which json.dumps cannot encode."
        bad = output
    else:
        path, bad, kind = found
        what = (f"run() returned a {_type_name(output)} whose {'key in' if kind == 'a key' else 'value at'} "
                f"{path} is a {_type_name(bad)}, which json.dumps cannot encode"
                + (" as a key (keys must be str, int, float, bool or None)." if kind == "a key" else "."))
    fix = _FIXES.get(_type_name(bad)) or (".item()" if _type_name(bad).startswith("numpy.") else None)
    logger.error(
        "%s %sReturn plain lists, dicts, numbers and strings, or return an AMLResponse to send raw bytes.",
        what, f"Convert it with {fix}. " if fix else "")


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


def close_response(response):
    """Calls close() of a Response run() returned, once its answer has been written or has failed, as
    gunicorn closes the WSGI iterable Werkzeug returns (PEP 3333): it closes the body's iterable and runs the
    call_on_close callbacks. An exception there is logged; the answer is out already."""
    close = getattr(response, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception as error:  # noqa: BLE001 - logged; nothing else is left to do for this request
        from ._failure import _user_traceback

        logger.error("%s.close() raised after the answer was sent (the client has it): a callback registered "
                     "with call_on_close(), or the close() of the body, failed; fix it in the script.\n%s",
                     type(response).__name__, _user_traceback(error))


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
    # Content-Length stays: the I/O thread writes its own and compares the script's with the body.
    headers = [(k, str(v)) for k, v in response.headers.items()]
    if status >= 500:
        headers = [(k, v) for k, v in headers if k.lower() != "x-ms-run-function-failed"]
        headers.append(("x-ms-run-function-failed", "True"))
    streamed = getattr(response, "is_streamed", False)
    if 100 <= status < 200 or status in (204, 304):
        # These answers have no body (RFC 9110 15.2, 15.3.5, 15.4.5); the I/O thread sends none. As
        # Werkzeug's get_wsgi_headers and get_app_iter, which the reference goes through: no Content-Length
        # for 1xx and 204, no entity headers for 304, and a streamed body is never iterated (an empty stream
        # here), only closed with the Response once the answer is out (close_response). A body of bytes is
        # still handed over: the request's log line shows its length, as the reference's does.
        if status == 304:
            headers = [(k, v) for k, v in headers if k.lower() not in _ENTITY_HEADERS]
        else:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if streamed:
            return status, reason, headers, None, iter(())
        return status, reason, headers, response.get_data(), None
    if streamed:
        return status, reason, headers, None, iter(response.iter_encoded())
    return status, reason, headers, response.get_data(), None


# Werkzeug's entity headers less the two it keeps on a 304 (expires, content-location).
_ENTITY_HEADERS = frozenset(("allow", "content-encoding", "content-language", "content-length", "content-md5",
                             "content-range", "content-type", "last-modified"))
