import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.schema_decorators import input_schema


def init():
    pass


@input_schema("frame", PandasParameterType(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})))
def run(frame):
    return {"columns": list(frame.columns), "rows": len(frame), "a": [int(v) for v in frame["a"]]}
