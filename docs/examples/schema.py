# inference-schema decorators: run() receives keyword arguments taken from the JSON body
# (or the query string for GET), converted to the declared types.
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", NumpyParameterType(np.array([[1.0, 2.0], [3.0, 4.0]])))
@input_schema("scale", StandardPythonParameterType(1.0))
@output_schema(StandardPythonParameterType({"sums": [3.0, 7.0]}))
def run(data, scale=1.0):
    # data arrives as a numpy array; return plain lists, numpy arrays are not JSON serialisable
    return {"sums": (data.sum(axis=1) * scale).tolist()}
