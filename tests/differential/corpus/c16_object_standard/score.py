from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("num", StandardPythonParameterType(1))
@input_schema("name", StandardPythonParameterType("a"))
@output_schema(StandardPythonParameterType({"out": 1}))
def run(num, name):
    return {"out": num * 2, "name": name, "types": [type(num).__name__, type(name).__name__]}
