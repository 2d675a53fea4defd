import time


def init():
    pass


def run(data):
    time.sleep(2)
    return "late"
