def init():
    pass


def run(data):
    return {"type": type(data).__name__, "data": data}
