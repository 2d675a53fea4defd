import driver_helper


def init():
    pass


def run(data):
    return driver_helper.answer(data)
