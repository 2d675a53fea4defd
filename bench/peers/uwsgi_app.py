"""A tiny WSGI adapter for uWSGI, shaped like the reference's /score: the POST body decoded as str, run() called
and timed, json.dumps, a JSON response with the x-ms-* headers and a generated x-request-id. GET / is the liveness
probe. No Flask, no logging, no scoring timeout: the leanest Python server of the bench."""
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load_entry_script  # noqa: E402

user = load_entry_script()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "7")])
        return [b"Healthy"]
    if path != "/score":
        body = b'{"message": "Not Found"}'
        start_response("404 NOT FOUND", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length).decode("utf-8")
    start = time.perf_counter()
    output = user.run(data)
    elapsed_ms = (time.perf_counter() - start) * 1000
    body = json.dumps(output).encode("utf-8")
    rid = str(uuid.uuid4())
    start_response("200 OK", [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("x-ms-run-function-failed", "False"),
        ("x-ms-run-fn-exec-ms", f"{elapsed_ms:.3f}"),
        ("x-request-id", rid),
        ("x-ms-request-id", rid),
    ])
    return [body]
