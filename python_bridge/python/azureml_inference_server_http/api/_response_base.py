"""Stand-in for ``flask.Response`` when flask is not installed.

AMLResponse must import and behave the same with or without flask, because
scripts build it without caring which is present. This mimics the parts of
werkzeug 2.2's Response and Headers that AMLResponse and the server touch,
with the same results (status text, header order, body encoding), so a
response looks identical on the wire either way. Nothing else is provided.
"""

from http import HTTPStatus

# werkzeug 2.2's table, copied rather than taken from http.HTTPStatus: a few
# phrases differ, and the phrase is sent in the status line.
HTTP_STATUS_CODES = {
    100: "Continue",
    101: "Switching Protocols",
    102: "Processing",
    103: "Early Hints",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi Status",
    208: "Already Reported",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    306: "Switch Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    417: "Expectation Failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    449: "Retry With",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    510: "Not Extended",
    511: "Network Authentication Failed",
}

_CHARSET_MIMETYPES = {
    "application/ecmascript",
    "application/javascript",
    "application/sql",
    "application/xml",
    "application/xml-dtd",
    "application/xml-external-parsed-entity",
}


def get_content_type(mimetype, charset):
    if mimetype.startswith("text/") or mimetype in _CHARSET_MIMETYPES or mimetype.endswith("+xml"):
        mimetype += f"; charset={charset}"
    return mimetype


def _to_header_str(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else str(value)


class Headers:
    """Ordered, multi-valued, case-insensitive header list; iterating yields (name, value)."""

    def __init__(self, defaults=None):
        self._list = []
        if defaults is not None:
            self.extend(defaults)

    def extend(self, other):
        items = other.items() if hasattr(other, "items") else other
        for key, value in items:
            if isinstance(value, (list, tuple)):
                for v in value:
                    self.add(key, v)
            else:
                self.add(key, value)

    @staticmethod
    def _validated(key, value):
        key, value = _to_header_str(key), _to_header_str(value)
        # Same guard as werkzeug: a newline would let a value inject headers.
        if "\n" in value or "\r" in value:
            raise ValueError("Detected newline in header value.  This is a potential security problem")
        return key, value

    def add(self, _key, _value):
        self._list.append(self._validated(_key, _value))

    add_header = add

    def set(self, _key, _value):
        """Replace every value of the header, keeping the position of the first one."""
        key, value = self._validated(_key, _value)
        ikey = key.lower()
        for idx, (old_key, _old) in enumerate(self._list):
            if old_key.lower() == ikey:
                self._list[idx] = (key, value)
                self._list[idx + 1 :] = [kv for kv in self._list[idx + 1 :] if kv[0].lower() != ikey]
                return
        self._list.append((key, value))

    def __setitem__(self, key, value):
        self.set(key, value)

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._list[key]
        if not isinstance(key, str):
            raise KeyError(key)
        ikey = key.lower()
        for k, v in self._list:
            if k.lower() == ikey:
                return v
        raise KeyError(key)

    def get(self, key, default=None, type=None):
        try:
            value = self[key]
        except KeyError:
            return default
        if type is None:
            return value
        try:
            return type(value)
        except ValueError:
            return default

    def getlist(self, key, type=None):
        ikey = key.lower()
        result = []
        for k, v in self._list:
            if k.lower() == ikey:
                if type is not None:
                    try:
                        v = type(v)
                    except ValueError:
                        continue
                result.append(v)
        return result

    def remove(self, key):
        """Drop every value of the header; a missing header is not an error."""
        ikey = key.lower()
        self._list[:] = [kv for kv in self._list if kv[0].lower() != ikey]

    def __delitem__(self, key):
        if isinstance(key, int):
            del self._list[key]
        else:
            self.remove(key)

    def __contains__(self, key):
        if not isinstance(key, str):
            return False
        ikey = key.lower()
        return any(k.lower() == ikey for k, _ in self._list)

    def __iter__(self):
        return iter(self._list)

    def __len__(self):
        return len(self._list)

    def items(self, lower=False):
        for key, value in self._list:
            yield (key.lower() if lower else key), value

    def keys(self, lower=False):
        for key, _ in self.items(lower):
            yield key

    def values(self):
        for _, value in self._list:
            yield value

    def to_wsgi_list(self):
        return list(self._list)

    def __repr__(self):
        return f"{type(self).__name__}({self._list!r})"


class Response:
    """Subset of werkzeug's Response: status, headers, body iterable, get_data()."""

    charset = "utf-8"
    default_status = 200
    default_mimetype = "text/html"
    automatically_set_content_length = True

    def __init__(self, response=None, status=None, headers=None, mimetype=None, content_type=None):
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or None)
        if content_type is None:
            if mimetype is None and "content-type" not in self.headers:
                mimetype = self.default_mimetype
            if mimetype is not None:
                mimetype = get_content_type(mimetype, self.charset)
            content_type = mimetype
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.status = self.default_status if status is None else status
        self._on_close = []

        # The body goes last so Content-Length lands after Content-Type, as in werkzeug.
        if response is None:
            self.response = []
        elif isinstance(response, (str, bytes, bytearray)):
            self.set_data(response)
        else:
            # Anything else is kept as is and only iterated when the body is sent,
            # which is why a dict yields its keys and an int fails late.
            self.response = response

    @property
    def status(self):
        return self._status

    @status.setter
    def status(self, value):
        if not isinstance(value, (str, bytes, int)):
            raise TypeError("Invalid status argument")
        self._status, self._status_code = self._clean_status(value)

    @property
    def status_code(self):
        return self._status_code

    @status_code.setter
    def status_code(self, code):
        self.status = code

    def _clean_status(self, value):
        if isinstance(value, HTTPStatus):
            value = int(value)
        if isinstance(value, bytes):
            value = value.decode(self.charset)
        status = str(value)
        split_status = status.split(None, 1)
        if not split_status:
            raise ValueError("Empty status argument")
        try:
            status_code = int(split_status[0])
        except ValueError:
            return f"0 {status}", 0
        if len(split_status) > 1:
            return status, status_code
        phrase = HTTP_STATUS_CODES.get(status_code)
        return f"{status_code} {phrase.upper() if phrase else 'UNKNOWN'}", status_code

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    @content_type.setter
    def content_type(self, value):
        if value is None:
            self.headers.remove("Content-Type")
        else:
            self.headers["Content-Type"] = value

    @property
    def mimetype(self):
        ct = self.headers.get("Content-Type")
        return ct.split(";")[0].strip() if ct else None

    @mimetype.setter
    def mimetype(self, value):
        self.headers["Content-Type"] = get_content_type(value, self.charset)

    @property
    def is_sequence(self):
        return isinstance(self.response, (tuple, list))

    @property
    def is_streamed(self):
        try:
            len(self.response)
        except (TypeError, AttributeError):
            return True
        return False

    def iter_encoded(self):
        return self._iter_encoded(self.response)

    def _iter_encoded(self, iterable):
        for item in iterable:
            yield item.encode(self.charset) if isinstance(item, str) else item

    def make_sequence(self):
        """Buffer a streamed body so it can be read more than once."""
        if not self.is_sequence:
            close = getattr(self.response, "close", None)
            self.response = list(self.iter_encoded())
            if close is not None:
                self.call_on_close(close)

    def get_data(self, as_text=False):
        self.make_sequence()
        rv = b"".join(self.iter_encoded())
        return rv.decode(self.charset) if as_text else rv

    def set_data(self, value):
        value = value.encode(self.charset) if isinstance(value, str) else bytes(value)
        self.response = [value]
        if self.automatically_set_content_length:
            self.headers["Content-Length"] = str(len(value))

    data = property(get_data, set_data)

    def call_on_close(self, func):
        self._on_close.append(func)
        return func

    def close(self):
        close = getattr(self.response, "close", None)
        if close is not None:
            close()
        for func in self._on_close:
            func()

    def __repr__(self):
        if self.is_sequence:
            body_info = f"{sum(map(len, self.iter_encoded()))} bytes"
        else:
            body_info = "streamed"
        return f"<{type(self).__name__} {body_info} [{self.status}]>"
