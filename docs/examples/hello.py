# JSON-string mode: run() receives the request body as a str (GET: the query string as a JSON object).
import json

factor = None


def init():
    global factor
    factor = 2  # load your model here: init() runs once per worker, before any request
    print("hello.py is ready")


def run(raw_data):
    data = json.loads(raw_data)  # invalid JSON raises here: the client gets a 500
    return {"doubled": [x * factor for x in data["values"]]}
