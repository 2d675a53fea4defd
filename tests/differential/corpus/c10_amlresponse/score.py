import json

from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def run(data):
    kind = json.loads(data)["kind"]
    if kind == "text":
        return AMLResponse("test", 444)
    if kind == "json_str":
        return AMLResponse("test", 555, json_str=True)
    if kind == "none":
        return AMLResponse(None, 333)
    if kind == "headers":
        return AMLResponse(None, 555, {"a": "A", "b": "A, B, C", "content-type": "A",
                                       "x-ms-run-function-failed": "Z"}, run_function_failed=True)
    if kind == "png":
        return AMLResponse(b"\x89PNG\r\n\x1a\n", 200, {"Content-Type": "image/png"})
    if kind == "dict":
        return AMLResponse({"a": 1, "b": 2}, 200)
    if kind == "dict_json":
        return AMLResponse({"a": 1, "b": 2}, 200, json_str=True)
    if kind == "201":
        return AMLResponse("made", 201, {"Location": "/x/1"})
    return AMLResponse("ok", 200)
