def init():
    pass


def run(data):
    return {"echo": data}
