import json


def init():
    pass


def helper(value):
    raise ValueError(f"bad value {value}")


def run(data):
    value = json.loads(data).get("value")
    if value == "key":
        return {}["missing"]
    return helper(value)
