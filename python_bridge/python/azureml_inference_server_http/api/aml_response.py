"""AMLResponse (docs/behaviour.md 4.6).

Also importable as ``azureml.contrib.services.aml_response``. Every quirk here
is observable by clients of the reference server and is kept on purpose: a
script validated against this server must behave the same in production.
"""


def _make_aml_response():
    import json  # here, not at the top: every worker imports this module, few scripts use AMLResponse

    try:
        from flask import Response as _BaseResponse
    except ImportError:
        # Scripts that only return AMLResponse do not need flask; keep them working.
        from ._response_base import Response as _BaseResponse


    class AMLResponse(_BaseResponse):
        """An HTTP response returned as-is by run()."""

        def __init__(self, message, status_code, response_headers={}, json_str=False, run_function_failed=False):
            if message is None:
                super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
            elif json_str:
                super().__init__(json.dumps(message), status=status_code, mimetype="application/json")
            else:
                # Not str/bytes: the base keeps the object and iterates it when
                # sending, so a dict yields its keys and a generator streams.
                super().__init__(message, status=status_code)
                # Only the exact spelling counts, and only in this mode; elsewhere
                # the user's Content-Type ends up as a second header.
                if "Content-Type" in response_headers:
                    # The loop below adds the user's value; drop the default so there is one.
                    self.headers.remove("Content-Type")

            self.headers["x-ms-run-function-failed"] = run_function_failed

            # Comma-separated values become repeated headers (RFC 2616 4.2). This
            # also splits values that legitimately contain commas, and a non-str
            # value fails on .split, inside run(), as in the reference.
            for header, value in response_headers.items():
                for piece in value.split(","):
                    self.headers.add(header, piece.strip())

    return AMLResponse


def __getattr__(name):
    # Built on first use (PEP 562), so a script that never returns an AMLResponse never imports flask.
    # aml_request.py has the same few lines for AMLRequest; kept in each module on purpose, so that
    # importing one of these public modules never imports the other.
    if name == "AMLResponse":
        cls = _make_aml_response()
        globals()["AMLResponse"] = cls
        return cls
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
