import not_a_module_anywhere


def init():
    pass


def run(data):
    return data
