from azureml.contrib.services.aml_request import rawhttp
from flask import Response

closed = []


def init():
    pass


@rawhttp
def run(request):
    if request.args.get("check"):
        return {"closed": closed}
    response = Response("body")
    response.call_on_close(lambda: closed.append("call_on_close"))
    return response
