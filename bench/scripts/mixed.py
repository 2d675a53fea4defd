"""The mixed workload's script: run() takes 200 ms when the request says "slow" (a model that works), and
answers at once otherwise (a cheap request that must not wait behind it)."""
import time


def init():
    pass


def run(input_data):
    if "slow" in input_data:
        time.sleep(0.2)
    return {"ok": True}
