import json

from flask import Response


def init():
    pass


def run(data):
    kind = json.loads(data)["kind"]
    if kind == "201":
        return Response("x", status=201, mimetype="text/plain")
    if kind == "503":
        return Response("down", status=503, headers={"x-ms-run-function-failed": "nope"})
    if kind == "rid":
        return Response("mine", status=200, headers={"x-request-id": "mine"})
    if kind == "json":
        return Response(json.dumps({"a": 1}), status=200, mimetype="application/json")
    return Response("plain")
