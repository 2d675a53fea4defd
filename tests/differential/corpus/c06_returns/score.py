import json


def init():
    pass


def run(data):
    kind = json.loads(data)["kind"]
    return {
        "none": None,
        "str": "hello",
        "tuple": (1, 2),
        "intkey": {1: "a"},
        "unicode": {"k": "\u00e9", "emoji": "\U0001f600"},
        "nan": float("nan"),
        "inf": [float("inf"), -float("inf")],
        "nested": {"a": [1, 2.5, True, None, {"b": "c\n\"q\""}]},
        "bool": False,
        "float": 0.1 + 0.2,
        "bigint": 2 ** 70,
        "list": [],
    }[kind]
