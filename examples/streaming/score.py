"""Stream a response: each string the generator yields is sent as its own HTTP chunk, as it is produced.

GET /score?n=5&delay=0.2 sends n lines, one every `delay` seconds; POST /score with a text body streams
its words back one per line. The generator runs after run() has returned, so the scoring timeout
(SCORING_TIMEOUT_MS) does not cover it and an exception inside it cuts the response short.
"""
import time

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def count(n, delay):
    for i in range(1, n + 1):
        if i > 1:
            time.sleep(delay)
        yield f"line {i} of {n}\n"


def words(text):
    for word in text.split():
        yield word + "\n"


@rawhttp
def run(request: AMLRequest):
    if request.method == "POST":
        return AMLResponse(words(request.get_data(as_text=True)), 200, {"Content-Type": "text/plain"})
    n = int(request.args.get("n", "5"))
    delay = float(request.args.get("delay", "0.2"))
    return AMLResponse(count(n, delay), 200, {"Content-Type": "text/plain"})
