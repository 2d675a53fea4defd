def init():
    pass


def run(data):
        x = 1
    return x
