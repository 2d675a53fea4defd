"""Hello world: an empty init(), a constant answer. Used for the hello workloads and the start-up time."""


def init():
    pass


def run(input_data):
    return {"message": "Hello, World!"}
