"""The request object a @rawhttp run() receives (docs/behaviour.md 4.4).

In the reference it is a flask.Request. When Flask (or Werkzeug) is installed we build exactly that from a
WSGI environ, so scripts see the real thing; otherwise a small class with the same surface stands in, so
the server never depends on Flask.
"""

import io
import json
import sys
import urllib.parse

try:
    from flask import Request as _FrameworkRequest
except ImportError:
    try:
        from werkzeug.wrappers import Request as _FrameworkRequest
    except ImportError:
        _FrameworkRequest = None


def make_environ(method, target, headers, body, remote_addr, server_port, protocol):
    path, _, query = target.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        # PEP 3333: the decoded path as latin-1 text.
        "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "0.0.0.0",
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": protocol,
        "REMOTE_ADDR": remote_addr,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        # The body is whole (de-chunked by the server), so reading to its end is safe: without this
        # Werkzeug reads nothing from a request that has no Content-Length (a chunked upload). gunicorn
        # sets it too.
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
            continue
        key = "HTTP_" + key
        environ[key] = environ[key] + "," + value if key in environ else value
    # CONTENT_LENGTH only when the client sent one, as gunicorn does: request.headers shows what came.
    return environ


def make_request(method, target, headers, body, remote_addr, server_port, protocol):
    environ = make_environ(method, target, headers, body, remote_addr, server_port, protocol)
    if _FrameworkRequest is not None:
        return _FrameworkRequest(environ)
    return StandInRequest(environ, body)


def _converted(value, type, default):
    """Werkzeug's get(key, default, type): the value through type(), or default when that fails."""
    if type is None:
        return value
    try:
        return type(value)
    except (ValueError, TypeError):
        return default


class _MultiDict(dict):
    """Keys map to their first value; getlist() gives all, as Werkzeug's MultiDict does."""

    def __init__(self, pairs=()):
        super().__init__()
        self._lists = {}
        for key, value in pairs:
            self._lists.setdefault(key, []).append(value)
            if key not in self:
                super().__setitem__(key, value)

    def getlist(self, key):
        return list(self._lists.get(key, []))

    def get(self, key, default=None, type=None):
        return _converted(self[key], type, default) if key in self else default

    def items(self, multi=False):
        if multi:
            return [(k, v) for k, values in self._lists.items() for v in values]
        return super().items()

    def lists(self):
        return list(self._lists.items())

    def to_dict(self, flat=True):
        return dict(self) if flat else {k: list(v) for k, v in self._lists.items()}


class _Headers:
    """Case-insensitive lookup; iterating yields (name, value) pairs like Werkzeug's EnvironHeaders."""

    def __init__(self, environ):
        self._pairs = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                self._pairs.append((key[5:].replace("_", "-").title(), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                self._pairs.append((key.replace("_", "-").title(), value))

    def get(self, key, default=None, type=None):
        for name, value in self._pairs:
            if name.lower() == key.lower():
                return _converted(value, type, default)
        return default

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        return self.get(key) is not None

    def __iter__(self):
        return iter(self._pairs)

    def __len__(self):
        return len(self._pairs)

    def items(self):
        return list(self._pairs)

    def keys(self):
        return [name for name, _ in self._pairs]

    def to_wsgi_list(self):
        return list(self._pairs)


class StandInRequest:
    """The surface of flask.Request that scoring scripts use, for servers without Flask."""

    def __init__(self, environ, body):
        self.environ = environ
        self._body = body
        self.method = environ["REQUEST_METHOD"]
        self.path = environ["PATH_INFO"]
        self.query_string = environ["QUERY_STRING"].encode("latin-1")
        self.args = _MultiDict(urllib.parse.parse_qsl(environ["QUERY_STRING"], keep_blank_values=True))
        self.headers = _Headers(environ)
        self.content_type = environ.get("CONTENT_TYPE")
        self.mimetype = (self.content_type or "").split(";")[0].strip().lower()
        self.remote_addr = environ.get("REMOTE_ADDR")
        self.host = self.headers.get("Host", "%s:%s" % (environ["SERVER_NAME"], environ["SERVER_PORT"]))
        self.scheme = "http"
        self._json_cache = None

    @property
    def full_path(self):
        return "%s?%s" % (self.path, self.query_string.decode("latin-1"))

    @property
    def url(self):
        query = self.query_string.decode("latin-1")
        return "http://%s%s%s" % (self.host, urllib.parse.quote(self.path), "?" + query if query else "")

    @property
    def base_url(self):
        return "http://%s%s" % (self.host, urllib.parse.quote(self.path))

    @property
    def data(self):
        return self._body

    @property
    def content_length(self):
        """Werkzeug's: the Content-Length sent, None without one (a GET, a chunked upload)."""
        try:
            return max(0, int(self.environ["CONTENT_LENGTH"]))
        except (KeyError, ValueError):
            return None

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        return self._body.decode("utf-8", "replace") if as_text else self._body

    @property
    def is_json(self):
        return self.mimetype == "application/json" or (
            self.mimetype.startswith("application/") and self.mimetype.endswith("+json"))

    @property
    def json(self):
        return self.get_json()

    def get_json(self, force=False, silent=False, cache=True):
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError("Did not attempt to load JSON data because the request Content-Type was not "
                             "'application/json'.")
        try:
            return json.loads(self._body)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def form(self):
        if self.mimetype != "application/x-www-form-urlencoded":
            return _MultiDict()
        return _MultiDict(urllib.parse.parse_qsl(self._body.decode("utf-8", "replace"), keep_blank_values=True))

    @property
    def files(self):
        return _MultiDict()

    @property
    def values(self):
        return _MultiDict(list(self.args.items(multi=True)) + list(self.form.items(multi=True)))
