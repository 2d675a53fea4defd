from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("num", StandardPythonParameterType(1))
@input_schema("label", StandardPythonParameterType("a"), optional=True)
def run(num, label=None):
    return {"num": num, "label": label}
