"""A Flask app for gunicorn (one sync worker), shaped like the reference's server (azureml-inference-server-http
1.5.1): request ids resolved before the view (x-request-id, x-ms-request-id, x-ms-client-request-id, their 431s),
/score decoding the body as str, run() under a SIGALRM scoring timeout and timed, json.dumps into an
application/json Response with x-ms-run-function-failed / x-ms-run-fn-exec-ms, the after-request headers
(x-ms-server-version, the ids), and one `azmlinfsrv` log line per request in the reference's format. The real
reference does somewhat more per request (AppInsights hooks, its config object), so this is a lower bound on its cost.
"""
import json
import logging
import os
import signal
import sys
import time
import uuid

from flask import Flask, Response, g, request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load_entry_script  # noqa: E402

logging.Formatter.converter = time.gmtime
_handler = logging.StreamHandler(sys.stdout)
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"))
logger = logging.getLogger("azmlinfsrv")
logger.addHandler(_handler)
logger.setLevel(logging.INFO)
logger.propagate = False

SCORING_TIMEOUT_MS = int(os.environ.get("SCORING_TIMEOUT_MS", "3600000"))
SERVER_VERSION = "azmlinfsrv/1.5.1"

user = load_entry_script()
app = Flask(__name__)


def _alarm(signum, frame):
    raise TimeoutError()


signal.signal(signal.SIGALRM, _alarm)


def _json(message, status):
    return Response(json.dumps({"message": message}), status=status, mimetype="application/json")


@app.before_request
def resolve_request_ids():
    rid = request.headers.get("x-request-id")
    g.request_id = rid if rid is not None else str(uuid.uuid4())
    if len(g.request_id) > 100:
        g.request_id = ""
        return _json("x-request-id must not exceed 100 characters", 431)
    legacy = request.headers.get("x-ms-request-id", "")
    client = request.headers.get("x-ms-client-request-id", "")
    if legacy:
        logger.warning("x-ms-request-id header has been deprecated")
        client = client or legacy
    else:
        legacy = client or g.request_id
    g.legacy_id, g.client_id = legacy, client
    if len(legacy) > 100 or len(client) > 100:
        g.legacy_id = g.client_id = ""
        return _json("x-ms-request-id and x-ms-client-request-id must not exceed 100 characters", 431)
    g.start = time.perf_counter()


@app.after_request
def add_headers(response):
    response.headers.add("x-ms-server-version", SERVER_VERSION)
    if getattr(g, "request_id", ""):
        response.headers["x-request-id"] = g.request_id
    if getattr(g, "legacy_id", ""):
        response.headers["x-ms-request-id"] = g.legacy_id
    if getattr(g, "client_id", ""):
        response.headers["x-ms-client-request-id"] = g.client_id
    if request.path == "/score" and hasattr(g, "start"):
        length = response.calculate_content_length()
        logger.info("%s %s %d %.3fms %s", request.method, request.full_path.rstrip("?"), response.status_code,
                    (time.perf_counter() - g.start) * 1000, "N/A" if length is None else length)
    return response


@app.route("/", methods=["GET"])
def health():
    return "Healthy"


@app.route("/score", methods=["GET", "POST"])
def score():
    if request.method == "GET":
        data = json.dumps(request.args.to_dict())
    else:
        try:
            data = request.get_data(as_text=False).decode("utf-8")
        except UnicodeDecodeError as ex:
            return _json(f"Input cannot be decoded as UTF-8: {ex}", 400)
    try:
        if SCORING_TIMEOUT_MS:
            signal.setitimer(signal.ITIMER_REAL, SCORING_TIMEOUT_MS / 1000)
        start = time.perf_counter()
        try:
            output = user.run(data)
        finally:
            elapsed_ms = (time.perf_counter() - start) * 1000
            if SCORING_TIMEOUT_MS:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except TimeoutError:
        logger.exception("Encountered Exception: ")
        response = _json(f"Scoring timeout after {SCORING_TIMEOUT_MS} ms", 500)
        response.headers["x-ms-run-function-failed"] = "True"
        return response
    except Exception:
        logger.exception("Encountered Exception: ")
        response = _json("An unexpected error occurred in scoring script. Check the logs for more info.", 500)
        response.headers["x-ms-run-function-failed"] = "True"
        return response
    response = Response(json.dumps({} if output is None else output), status=200, mimetype="application/json")
    response.headers["x-ms-run-function-failed"] = "False"
    response.headers["x-ms-run-fn-exec-ms"] = f"{elapsed_ms:.3f}"
    return response
