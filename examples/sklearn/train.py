"""Train a small scikit-learn model and save it where score.py will look for it.

    python3 train.py MODEL_DIR

Fits a LogisticRegression on the iris data set (it ships with scikit-learn: nothing is downloaded) and
writes MODEL_DIR/model.joblib. Start the server with --model_dir MODEL_DIR to serve it.
"""
import os
import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(model_dir):
    iris = load_iris()
    model = LogisticRegression(max_iter=1000)
    model.fit(iris.data, iris.target)
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "model.joblib")
    joblib.dump({"model": model, "classes": [str(n) for n in iris.target_names]}, path)
    return path, model.score(iris.data, iris.target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} MODEL_DIR")
    path, accuracy = train(sys.argv[1])
    print(f"saved {path} (training accuracy {accuracy:.3f})")
