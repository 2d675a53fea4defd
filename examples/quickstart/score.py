"""The quickstart scoring script: the shape of every score.py.

init() runs once per worker when the server starts (load your model here); run() is called for every
request to /score with the request body as a string (or the query string as JSON for GET).
"""
import time


def init():
    # Stands in for loading a model from AZUREML_MODEL_DIR.
    time.sleep(1)


def run(input_data):
    return {"message": "Hello, World!"}
