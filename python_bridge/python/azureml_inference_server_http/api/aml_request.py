"""AMLRequest and the rawhttp decorator (docs/behaviour.md 4.7).

Also importable as ``azureml.contrib.services.aml_request``.
"""

# Read by the server after the score script loads: any use of @rawhttp, on any
# function, switches run() to raw request mode (a global flag, as in the reference).
_rawHttpRequested = False


def rawhttp(func):
    """Ask the server to call run() with the raw HTTP request."""
    global _rawHttpRequested
    _rawHttpRequested = True
    return func


def _make_aml_request():
    try:
        from flask import Request as _FlaskRequest
    except ImportError:
        _FlaskRequest = None

    if _FlaskRequest is not None:

        class AMLRequest(_FlaskRequest):
            """Type hint for the request a @rawhttp run() receives; never instantiated."""

            def __init__(self):
                # flask.Request needs a WSGI environ, so this raises TypeError on
                # every call, with or without arguments, as the reference does.
                super().__init__()

        return AMLRequest

    class AMLRequest:
        """Type hint for the request a @rawhttp run() receives; never instantiated."""

        def __init__(self, *args, **kwargs):
            raise TypeError(
                "AMLRequest is only a type hint for the request passed to a @rawhttp run(); "
                "it cannot be instantiated (and flask, which it would wrap, is not installed)"
            )

    return AMLRequest


def __getattr__(name):
    # Built on first use (PEP 562): importing flask costs every worker ~150 ms and ~17 MiB, and the server
    # imports this module for each script, most of which never name AMLRequest.
    if name == "AMLRequest":
        cls = _make_aml_request()
        globals()["AMLRequest"] = cls
        return cls
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
