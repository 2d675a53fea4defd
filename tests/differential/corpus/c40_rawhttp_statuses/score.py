from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    code = int(request.args.get("code", "200"))
    body = request.args.get("body")
    return AMLResponse(body, code, {"X-Code": str(code)})
