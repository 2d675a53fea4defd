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
