"""Echo: run() returns the request body (a str), so the server json.dumps it back (about the same size)."""


def init():
    pass


def run(input_data):
    return input_data
