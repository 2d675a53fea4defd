"""Return binary data with its own Content-Type.

GET /score?size=N returns an N x N grey-scale PNG (a diagonal gradient) drawn with the standard library
only; POST /score returns the request body reversed, as application/octet-stream. run() receives the raw
request because of @rawhttp, and returns an AMLResponse so the bytes are sent as they are.
"""
import struct
import zlib

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def png(size):
    """A size x size 8-bit grey-scale PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes((x + y) * 255 // max(1, 2 * size - 2) for x in range(size)) for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # width, height, depth 8, grey, ...
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@rawhttp
def run(request: AMLRequest):
    if request.method == "GET":
        size = int(request.args.get("size", "8"))
        if not 1 <= size <= 1024:
            return AMLResponse({"error": "size must be between 1 and 1024"}, 400, json_str=True)
        # The exact key "Content-Type" replaces the default text/html.
        return AMLResponse(png(size), 200, {"Content-Type": "image/png"})
    if request.method == "POST":
        return AMLResponse(request.get_data()[::-1], 200, {"Content-Type": "application/octet-stream"})
    return AMLResponse("", 200)  # OPTIONS and HEAD reach run() too in raw mode
