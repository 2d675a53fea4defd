def init():
    raise RuntimeError("cannot load the model")


def run(data):
    return data
