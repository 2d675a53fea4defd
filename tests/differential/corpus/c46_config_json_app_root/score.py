import os


def init():
    pass


def run(data):
    return {k: os.environ.get(k) for k in ("SERVICE_NAME", "SCORING_TIMEOUT_MS", "WORKSPACE_NAME", "SERVICE_VERSION")}
