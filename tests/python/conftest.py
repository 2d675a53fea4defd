import os
import sys

# Lets `pytest tests/python` work without PYTHONPATH pointing at the package.
PACKAGE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "python_bridge", "python"))
if PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, PACKAGE_ROOT)
