"""Python-side package of the azmlinfsrv replacement.

Score scripts import the public API from here (``api.aml_request``,
``api.aml_response``); the server itself is native code.
"""

import os as _os


def _read_version():
    # VERSION is the single source of truth shared with the meson build, so the
    # package and the x-ms-server-version header can never disagree.
    with open(_os.path.join(_os.path.dirname(__file__), "VERSION"), encoding="utf-8") as f:
        return f.read().strip()


__version__ = _read_version()
