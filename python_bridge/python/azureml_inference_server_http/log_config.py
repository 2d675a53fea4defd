"""The names a user logging.json written for the reference refers to (its documented example uses
azureml_inference_server_http.log_config.AMLLogFormatter and .RootAccessFilter): without them such a
file fails to load. Imported only when a logging.json names them."""

import logging

from ._logging import UTCFormatter


class AMLLogFormatter(UTCFormatter):
    """The server's line format, in UTC."""


class RootAccessFilter(logging.Filter):
    """Leaves out the access lines of liveness probes (GET / over HTTP/1.1)."""

    def filter(self, record):
        return "GET / HTTP/1.1" not in record.getMessage()
