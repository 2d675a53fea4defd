# @rawhttp: run() receives the HTTP request itself (a flask.Request) and may return an AMLResponse.
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    if request.method == "GET":
        return {"greeting": f"Hello, {request.args.get('name', 'world')}!"}
    if request.method == "POST":
        if not request.is_json:
            return AMLResponse(f"expected JSON, got {request.content_type}", 415)
        return {"keys": sorted(request.json), "user_agent": request.headers.get("User-Agent")}
    return AMLResponse("", 200)  # OPTIONS and HEAD /score reach run() too
