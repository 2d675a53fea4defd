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


def log_run_exception(error, scoring_timeout_ms):
    """run() raised (docs/behaviour.md 3.5): the script's traceback, ending as the reference's does with the
    exception it wraps the script's in (UserScriptTimeout for a TimeoutError, else UserScriptException)."""
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
    headers = [(k, str(v)) for k, v in response.headers.items() if k.lower() != "content-length"]
    if status >= 500:
        headers = [(k, v) for k, v in headers if k.lower() != "x-ms-run-function-failed"]
        headers.append(("x-ms-run-function-failed", "True"))
    if getattr(response, "is_streamed", False):
        return status, reason, headers, None, iter(response.iter_encoded())
    return status, reason, headers, response.get_data(), None
