# AMLResponse: choose the status, the headers and the body's type yourself.
import json

from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def run(raw_data):
    data = json.loads(raw_data)
    if "name" not in data:
        # json_str=True sends the dict as JSON (without it, a dict's *keys* would be sent)
        return AMLResponse({"error": "name is required"}, 400, json_str=True)
    # header values are split on commas: this sends two Cache-Control headers
    return AMLResponse(f"Hello, {data['name']}!", 200,
                       {"Content-Type": "text/plain", "Cache-Control": "no-cache, no-store"})
