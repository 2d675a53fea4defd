# Return values are sent with json.dumps: convert numpy arrays with .tolist().
import json

import numpy as np


def init():
    pass


def run(raw_data):
    request = json.loads(raw_data)
    values = np.arange(3) * 1.5
    if request.get("as") == "array":
        return values  # json.dumps cannot encode an ndarray: 500
    return {"values": values.tolist()}
