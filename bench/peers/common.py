"""Loads the entry script the way the reference does (importlib, as module `entry_module`) and runs init().

Shared by the uWSGI adapter and the Flask app; the script path comes from AZUREML_ENTRY_SCRIPT.
"""
import importlib.util
import os
import sys


def load_entry_script():
    path = os.path.abspath(os.environ["AZUREML_ENTRY_SCRIPT"])
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("entry_module", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["entry_module"] = module
    spec.loader.exec_module(module)
    module.init()
    return module
