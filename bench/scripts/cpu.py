"""CPU-bound scoring: run() works about 5 ms in pure Python, holding the GIL (a model without native
threads). Used by the scaling mode: its throughput can only grow with more worker processes."""


def init():
    pass


def run(input_data):
    total = 0
    for i in range(60000):
        total += i * i % 7
    return {"total": total}
