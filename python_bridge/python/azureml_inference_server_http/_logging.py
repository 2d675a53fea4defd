"""Logging helpers referenced by the packaged logging.json."""

import logging
import time

AML_LOG_FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"


class UTCFormatter(logging.Formatter):
    """The reference stamps every line in UTC whatever the host's time zone is."""

    converter = time.gmtime

    def __init__(self, fmt=AML_LOG_FORMAT, datefmt=None, style="%", validate=True, *, defaults=None):
        # The default fmt lets a user logging.json name this class without repeating the format.
        super().__init__(fmt=fmt, datefmt=datefmt, style=style, validate=validate, defaults=defaults)


# The id of the request run() is serving, set by the server for each call; None outside requests.
current_request_id = None


class JsonFormatter(logging.Formatter):
    """One JSON object per record (--log_format json): the same fields as the server's native lines."""

    def format(self, record):
        import json

        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return json.dumps({
            "time": "%s.%03dZ" % (stamp, int(record.msecs)),
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": message,
            "request_id": current_request_id,
        }, ensure_ascii=False)
