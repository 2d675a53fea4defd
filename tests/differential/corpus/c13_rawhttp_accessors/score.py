import json

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def safe(fn):
    try:
        return fn()
    except Exception as e:  # the class of error is part of the behaviour
        return f"raised {type(e).__name__}"


@rawhttp
def run(request):
    seen = {
        "method": request.method,
        "path": request.path,
        "full_path": request.full_path,
        "args": request.args.to_dict(flat=False),
        "get_data": request.get_data().decode("latin-1"),
        "data": request.data.decode("latin-1"),
        "is_json": request.is_json,
        "json": safe(lambda: request.json),
        "get_json_silent": safe(lambda: request.get_json(silent=True)),
        "form": safe(lambda: request.form.to_dict(flat=False)),
        "files": safe(lambda: {k: [f.filename, f.content_type, f.read().decode("latin-1")]
                               for k, f in request.files.items()}),
        "values": safe(lambda: request.values.to_dict(flat=False)),
        "headers": sorted([k, v] for k, v in request.headers.items() if k.lower() != "user-agent"),
        "mimetype": request.mimetype,
        "content_type": request.content_type,
        "content_length": request.content_length,
        "stream": safe(lambda: request.stream.read().decode("latin-1")),
        "url": request.url,
        "host": request.host,
        "scheme": request.scheme,
        "query_string": request.query_string.decode(),
        "remote_addr": request.remote_addr,
        "environ_keys": sorted(k for k in request.environ if k.startswith(("HTTP_", "CONTENT_", "REQUEST_", "QUERY_", "PATH_"))),
    }
    return AMLResponse(json.dumps(seen, sort_keys=True), 200, {"Content-Type": "application/json"})
