import os


def init():
    pass


def run(data):
    keys = ["AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY", "AZUREML_MODEL_DIR", "AML_APP_ROOT",
            "AZUREML_ENTRY_SCRIPT", "SERVICE_NAME", "WORKER_TIMEOUT"]
    return {k: os.environ.get(k) for k in keys}
