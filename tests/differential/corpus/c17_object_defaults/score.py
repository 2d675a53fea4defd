from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("num", StandardPythonParameterType(1))
@input_schema("opt", StandardPythonParameterType(7))
def run(num, opt=7):
    return {"num": num, "opt": opt}
