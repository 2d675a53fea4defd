"""scikit-learn: a LogisticRegression trained on iris at bench set-up, loaded once in init(), predict per request.

The request body is {"data": [[sepal_length, sepal_width, petal_length, petal_width], ...]}; the answer is the
list of predicted classes.
"""
import json
import os
import pickle

import numpy as np

model = None


def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "iris_lr.pkl"), "rb") as f:
        model = pickle.load(f)


def run(input_data):
    data = np.array(json.loads(input_data)["data"])
    return model.predict(data).tolist()
