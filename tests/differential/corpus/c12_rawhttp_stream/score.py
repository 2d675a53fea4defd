from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    kind = request.args.get("kind", "words")
    if kind == "empty":
        return AMLResponse((x for x in ()), 200)
    if kind == "bytes":
        return AMLResponse((x for x in [b"ab", b"", b"cd"]), 200)
    return AMLResponse((w + "\n" for w in ["one", "two", "three"]), 200)
