# Load a model from the folder given with --model_dir (exported as AZUREML_MODEL_DIR).
import json
import os

weights = None


def init():
    global weights
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")
    with open(path) as f:
        weights = json.load(f)["weights"]
    print(f"loaded {len(weights)} weights from {path}")


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return [sum(w * x for w, x in zip(weights, row)) for row in rows]
