"""Serve the iris classifier written by train.py.

init() loads MODEL_DIR/model.joblib once per worker; the server exports --model_dir as AZUREML_MODEL_DIR.
run() takes a JSON body {"data": [[sepal length, sepal width, petal length, petal width], ...]} and
returns {"predictions": [class index, ...], "labels": [class name, ...]}.
"""
import json
import os

import joblib
import numpy as np

model = None
classes = None


def init():
    global model, classes
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib")
    saved = joblib.load(path)
    model, classes = saved["model"], saved["classes"]
    print(f"Loaded model from {path}")


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"], dtype=float)
    predictions = model.predict(data)
    # numpy arrays are not JSON serialisable: return plain lists
    return {"predictions": predictions.tolist(), "labels": [classes[i] for i in predictions]}
