"""Compares the inference-schema stand-in (tests/fixtures/pylib) with the real inference-schema 1.7.2.

    /usr/bin/python3 tests/differential/compare_schema.py [-v] [PROBE-PREFIX ...]

Each library is imported in its own child process (its folder first on sys.path), which runs the same
table of probes and prints the results as JSON; this process compares them key by key and prints every
difference. What is probed is what a scoring script, the server or a client can tell:

* every parameter type over a table of samples: the constructor (its exception or warnings),
  input_to_swagger() (as the JSON text the server would serve), supported_versions(), and for each of a
  set of inputs deserialize_input() and a decorated run(x) called as the server calls it (run(x=...)):
  the value and its type, or the exception's type and message (the last line the server logs);
* decorator scenarios (small scripts): what decoration raises, the registry the server reads
  (is_schema_decorated, get_input_schema, get_output_schema, get_supported_versions, get_schemas_dict),
  what the wrapped run() shows (name, signature, getfullargspec) and what calls with keywords,
  positions, defaults, missing or extra arguments return or raise;
* the public names of the modules scripts and the server import.

The real library is taken from $INFERENCE_SCHEMA_ROOT (default $AZMLINFSRV_REFERENCE/src/schema,
i.e. /tmp/azmlinfsrv-reference/src/schema); tests/differential/setup_reference.sh puts it there. It needs
wrapt, python-dateutil and pytz (Debian: python3-wrapt python3-dateutil python3-tz), numpy and pandas.

DELIBERATE below lists the probes that differ on purpose, each with its reason. Exit status: 0 when
nothing else differs, 1 otherwise, 2 when the real library is missing.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STAND_IN = os.path.join(REPO, "tests", "fixtures", "pylib")
REAL = os.environ.get("INFERENCE_SCHEMA_ROOT") or os.path.join(
    os.environ.get("AZMLINFSRV_REFERENCE", "/tmp/azmlinfsrv-reference"), "src", "schema")

# probe id (or a prefix ending in '*') -> why it differs on purpose
DELIBERATE = {
    "scenario/*/run.type": "the real wraps run() in a wrapt.FunctionWrapper (a proxy object), the stand-in in a "
                           "plain function (functools.wraps): wrapt is not a dependency of our CI; name, "
                           "signature, __wrapped__ and calls are the same",
    "scenario/user_decorator_outside/run.getfullargspec": "a script's functools.wraps wrapper around the "
                                                          "decorated run() copies its __signature__ (which gives "
                                                          "getfullargspec(run) run's own parameters) where the "
                                                          "real's copies nothing; inspect.signature is the same",
    "modules/inference_schema.parameter_types.spark_parameter_type": "SparkParameterType is left out: pyspark is "
                                                                      "not available here, and importing it fails "
                                                                      "either way (pyspark or the module missing)",
}

# ---------------------------------------------------------------------------------------------------
# The probe table. Expressions are evaluated in the child with: np, pd, dt (the datetime module),
# SP / NP / PD (the three parameter types), AP (AbstractParameterType).

STANDARD_SAMPLES = [
    "1", "0", "1.5", "'a'", "''", "True", "None", "[1, 2]", "[1.5, 2.5]", "['a', 'b']", "[1, 'a']",
    "[1, 'a', 2.5]", "[True, 1]", "[[1, 2], [3]]", "[[1, 'a']]", "[[1, 2], 'a']", "[]", "[None]",
    "[{'a': 1}, {'a': 'x'}]", "[{'a': 1, 'b': [1, 'x']}]", "{'a': 1, 'b': 'x'}", "{'a': {'b': [1, 2]}}",
    "{'a': [1, 'x']}", "{'a': {'b': [1, [2, 'c']]}}", "{}", "{1: 'a'}", "(1, 2)", "(1, 'a')", "range(3)",
    "dt.datetime(2020, 1, 2, 3, 4, 5, 6)", "dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)",
    "dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))",
    "dt.date(2020, 1, 2)", "dt.time(1, 2, 3)", "dt.time(1, 2, 3, 4, tzinfo=dt.timezone.utc)",
    "b'abc'", "bytearray(b'ab')", "np.int64(3)", "np.float64(1.5)", "object()", "{'a': np.int64(1)}",
    "{'n': SP(1), 'm': SP('x')}", "{'n': SP(1), 'arr': NP(np.array([1, 2]))}", "[SP(1)]", "[SP(1), SP('a')]",
    "[SP([1, 'a'])]", "[SP(1), 2]", "[1, SP(2)]", "{'l': SP([SP(1)])}", "{'frame': PD(pd.DataFrame({'a': [1]}))}",
    "[{'a': 1}, 'x']",
]
STANDARD_INPUTS = [
    "1", "0", "-5", "1.5", "'12'", "'a'", "''", "True", "False", "None", "[1, 2]", "[1, 'a']", "[]", "[[1], 2]",
    "{'a': 1}", "{'a': 'x', 'b': 2}", "{}", "{'n': '1', 'm': 2}", "{'n': 5, 'arr': [3, 4]}",
    "{'l': [1, '2']}", "{'frame': [{'a': 5}]}", "[[1, 2]]", "['1', 2]",
    "'2020-01-02T03:04:05'", "'2020-01-02 03:04:05.123 +0100'", "'2020-01-02'", "'03:04:05'", "'Jan 5 2021'",
    "'not a date'", "'YWJj'", "'not base64!'", "(1, 2)",
]

NUMPY_SAMPLES = [
    "NP(np.array([1, 2, 3]))", "NP(np.array([[1.0, 2.0, 3.0]]))", "NP(np.array([[1, 2], [3, 4], [5, 6]]))",
    "NP(np.array([True, False]))", "NP(np.array(['a', 'bc']))", "NP(np.array([1, 2], dtype=np.int32))",
    "NP(np.array([1, 2], dtype=np.int8))", "NP(np.array([1, 2], dtype=np.uint8))",
    "NP(np.array([1, 2], dtype=np.uint64))", "NP(np.array([1.5], dtype=np.float32))",
    "NP(np.array([1.5], dtype=np.float16))", "NP(np.array([[[1, 2]], [[3, 4]]]))",
    "NP(np.array([(1, 2.5, 'x')], dtype=[('a', 'i4'), ('b', 'f8'), ('c', 'U3')]))",
    "NP(np.array([(1, (2.0, 3.0))], dtype=[('a', 'i8'), ('v', 'f4', (2,))]))",
    "NP(np.array([((1, True),)], dtype=[('s', [('x', 'i2'), ('y', '?')])]))",
    "NP(np.array([[1, 2]], dtype=np.int64), enforce_shape=False)",
    "NP(np.array([[1, 2]], dtype=np.int64), enforce_column_type=False)",
    "NP(np.array([1.0, 2.0]), enforce_column_type=False, enforce_shape=False)",
    "NP(np.array(['2020-01-01T00:00:00'], dtype='datetime64[s]'))",
    "NP(np.array(['2020-01-01'], dtype='datetime64[D]'))",
    "NP(np.array(['2020-01-01T00:00:00'], dtype='datetime64[ns]'))",
    "NP(np.array([1, 2], dtype='timedelta64[D]'))", "NP(np.array([b'ab', b'c']))",
    "NP(np.array([{'a': 1}, None], dtype=object))", "NP(np.array([1 + 2j]))", "NP(np.array(5))",
    "NP(np.array([]))", "NP(np.zeros((0, 3)))", "NP([1, 2])", "NP(np.array([1.5], dtype=np.longdouble))",
]
NUMPY_INPUTS = [
    "[1, 2, 3]", "[1, 2]", "[[1, 2, 3]]", "[[1, 2, 3], [4, 5, 6]]", "[[1, 2]]", "[[1, 2], [3, 4]]", "[1.5, 2]",
    "['a', 'b']", "['1', '2']", "[True, False]", "'nope'", "5", "None", "{'a': 1}", "[[1, 2], [3]]",
    "[{'a': 1, 'b': 2.0, 'c': 'y'}]", "[[1, 2.0, 'y']]", "[[7, [8, 9]]]", "[{'s': {'x': 1, 'y': False}}]",
    "['2020-01-01T00:00:00']", "['1 days', '2 weeks']", "['1 lightyears']", "['x']", "[]", "[[[1, 2]]]",
    "[[[1, 2]], [[3, 4]]]", "[None]", "(1, 2)", "[{'a': 1}]", "['YWI=']",
]

_FRAME = "pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})"
_TYPED = ("pd.DataFrame({'i': [1, 2], 'f': [0.5, 1.5], 'b': [True, False], 's': ['x', 'y'], "
          "'d': pd.to_datetime(['2020-01-01', '2020-01-02 03:04:05']), 't': pd.to_timedelta(['1 days', '2 hours'])})")
PANDAS_SAMPLES = (
    [f"PD({_FRAME}, orient='{o}')" for o in ("records", "split", "index", "columns", "values", "table")]
    + [f"PD({_TYPED}, orient='{o}')" for o in ("records", "split", "index", "columns", "values", "table")]
    + [f"PD({_FRAME})", f"PD({_FRAME}, enforce_column_type=False)", f"PD({_FRAME}, enforce_shape=False)",
       f"PD({_FRAME}, apply_column_names=True)", f"PD({_FRAME}, orient='bogus')", "PD([1, 2])",
       "PD(pd.DataFrame({'d': pd.to_datetime(['2020-01-01']).tz_localize('UTC')}))",
       "PD(pd.DataFrame({0: [1], 1: ['x']}))", "PD(pd.DataFrame({'a': [1, 2]}, index=['r1', 'r2']), orient='index')",
       "PD(pd.DataFrame({'a': pd.Series([1, None], dtype='Int64')}))", "PD(pd.DataFrame())",
       "PD(pd.DataFrame({'c': pd.Categorical(['u', 'v'])}))"]
)
PANDAS_INPUTS = [
    "[{'a': 5, 'b': 'p'}, {'a': 6, 'b': 'q'}, {'a': 7, 'b': 'r'}]", "{'a': {'0': 1}, 'b': {'0': 'z'}}",
    "{'columns': ['a', 'b'], 'index': [0], 'data': [[1, 'z']]}", "[[1, 'z'], [2, 'w']]",
    "{'0': {'a': 1, 'b': 'z'}}", "{'schema': {'fields': [{'name': 'index', 'type': 'integer'}, "
    "{'name': 'a', 'type': 'integer'}, {'name': 'b', 'type': 'string'}], 'primaryKey': ['index']}, "
    "'data': [{'index': 0, 'a': 1, 'b': 'z'}]}",
    "[{'a': 'x', 'b': 'p'}]", "[{'a': 1.5, 'b': 'p'}]", "[{'a': 1}]", "[{'a': 1, 'b': 'p', 'c': 2}]", "[]", "{}",
    "'text'", "5", "None", "[{'i': 3, 'f': 1, 'b': True, 's': 'q', 'd': '2021-03-04', 't': '3 days'}]",
    "[{'d': '2021-03-04T00:00:00Z'}]", "[{'d': '2021-03-04'}]", "[1, 2]", "[{'0': 1, '1': 'x'}]",
    "[{'c': 'u'}]", "[{'a': None}]",
]

# Decorator scenarios: (id, script, calls). The script gets the imports below and SP, NP, PD, AP; calls
# are expressions evaluated in its namespace. Each runs as its own module (the registry is keyed by module
# and name).
HEADER = """\
import numpy as np
import pandas as pd
from inference_schema.schema_decorators import input_schema, output_schema
"""
SCENARIOS = [
    ("standard", """
@input_schema("num", SP(1))
@input_schema("name", SP("a"))
@output_schema(SP({"out": 1}))
def run(num, name):
    '''doc'''
    return [num, name]
""", ["run(num=10, name='x')", "run(10, 'x')", "run(10, name='x')", "run(num='12', name=5)", "run(num=1)",
      "run(name='x')", "run(num=1, name='a', extra=2)", "run(1, 'a', 3)", "run()", "run(num=True, name='')",
      "run(num=1.5, name='a')", "run(num=None, name='a')", "run('12', 'a')", "run(num=[1], name='a')"]),
    ("defaults", """
@input_schema("num", SP(1))
@input_schema("opt", SP(7))
def run(num, opt=7):
    return [num, opt]
""", ["run(num=1)", "run(num=1, opt=2)", "run(num=1, opt=7)", "run(1)", "run(1, 2)", "run(num=1, opt=None)",
      "run(opt=2)", "run(num=1, opt='x')"]),
    ("default_undecorated", """
@input_schema("num", SP(1))
def run(num, opt=None):
    return [num, opt]
""", ["run(num=1)", "run(num=1, opt='x')", "run(1)"]),
    ("optional", """
@input_schema("num", SP(1))
@input_schema("opt", SP(7), optional=True)
def run(num, opt=None):
    return [num, opt]
""", ["run(num=1)", "run(num=1, opt=2)", "run(num=1, opt='x')", "run(num=1, opt=0)", "run(num=1, opt='')",
      "run(1, 'x')", "run(num=1, opt=None)"]),
    ("no_convert", """
@input_schema("num", SP(1), convert_to_provided_type=False)
def run(num):
    return num
""", ["run(num='12')", "run('12')", "run()"]),
    ("order", """
@input_schema("b", SP("x"))
@input_schema("a", SP(1))
@output_schema(SP([1.0]))
def run(a, b, c=None, *rest, k=1, **kw):
    return [a, b, c]
""", ["run(a=1, b='y')", "run(1, 'y')", "run(1, 'y', 2, 3, k=2)"]),
    ("unknown_param", """
@input_schema("zzz", SP(1))
def run(a):
    return a
""", ["run(a=1)", "run(1)", "run(zzz=1)", "run(a=1, zzz='2')"]),
    ("request_headers", """
@input_schema("num", SP(1))
def run(num, request_headers):
    return [num, request_headers]
""", ["run(num=1, request_headers={'A': 'b'})", "run(1, {})"]),
    ("hf_transformers_v2", """
@input_schema("data", SP({"parameters": {}, "input_string": "a"}))
@input_schema("num", SP(1))
def run(data, num=1):
    return [data, num]
""", ["run({'parameters': 1, 'input_string': 2})", "run({'parameters': 1, 'input_string': 2}, 'x')",
      "run(data={'parameters': 1, 'input_string': 2}, num='x')", "run({'parameters': 1})",
      "run(data=[1], num=1)"]),
    ("numpy_and_output", """
@input_schema("data", NP(np.array([[1.0, 2.0, 3.0]])))
@output_schema(NP(np.array([3726.995])))
def run(data):
    return [str(data.dtype), data.shape]
""", ["run(data=[[1, 2, 3], [4, 5, 6]])", "run(data=[[1.5, 2, 3]])", "run(data='nope')", "run(data=[1, 2, 3])",
      "run(data=[[1, 2]])", "run(data=np.array([1]))", "run([[1, 2, 3]])"]),
    ("pandas", """
@input_schema("frame", PD(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})))
def run(frame):
    return [list(frame.columns), frame.shape, [str(t) for t in frame.dtypes]]
""", ["run(frame=[{'a': 5, 'b': 'p'}])", "run(frame={'a': {'0': 1}, 'b': {'0': 'z'}})", "run(frame='x')",
      "run(frame=[{'a': 'q', 'b': 'p'}])"]),
    ("nested", """
@input_schema("d", SP({"n": SP(1), "arr": NP(np.array([1, 2])), "plain": [1, "a"]}))
@input_schema("l", SP([SP(1.5)]))
def run(d, l):
    return [d, l]
""", ["run(d={'n': 2, 'arr': [3, 4], 'plain': 'x'}, l=[1, 2.5])", "run(d={'n': '2'}, l=[])",
      "run(d={}, l=['x'])", "run(d=[], l=[])", "run(d={'arr': 'x'}, l=[1])", "run(d={'n': 1}, l='x')",
      "run(d={'n': 1}, l=(1, 2))"]),
    ("versions_outer_mixed", """
@input_schema("a", SP([1, "x"]))
@input_schema("b", SP(1))
def run(a, b):
    return [a, b]
""", ["run(a=[1], b=2)"]),
    ("versions_inner_mixed", """
@input_schema("a", SP(1))
@input_schema("b", SP([1, "x"]))
def run(a, b):
    return [a, b]
""", ["run(a=1, b=['y', 2])"]),
    ("versions_output_mixed", """
@input_schema("a", SP(1))
@output_schema(SP({"o": [1, "x"]}))
def run(a):
    return a
""", []),
    ("versions_both_mixed", """
@output_schema(SP([[1, "x"]]))
@input_schema("a", SP([1, 2.5]))
def run(a):
    return a
""", ["run(a=[3])"]),
    ("output_only", """
@output_schema(SP(1))
def run(data):
    return data
""", ["run('x')", "run(data=[1])"]),
    ("undecorated", """
def run(data):
    return data
""", ["run(1)"]),
    ("output_twice", """
@output_schema(SP(1))
@output_schema(SP('a'))
def run(data):
    return data
""", []),
    ("not_a_type_input", """
@input_schema("a", 1)
def run(a):
    return a
""", []),
    ("not_a_type_output", """
@output_schema({"a": 1})
def run(a):
    return a
""", []),
    ("none_sample", """
@input_schema("a", SP(None))
def run(a):
    return a
""", []),
    ("unserialisable_sample", """
@input_schema("a", SP(np.int64(1)))
def run(a):
    return a
""", []),
    ("closure", """
def _make():
    k = 1
    @input_schema("x", SP(1))
    def run(x):
        return x + k
    return run
run = _make()
""", ["run(x=1)"]),
    ("user_decorator_outside", """
import functools
def timed(f):
    @functools.wraps(f)
    def inner(*args, **kwargs):
        return f(*args, **kwargs)
    return inner
@timed
@input_schema("x", SP(1))
def run(x):
    return x
""", ["run(x=1)", "run(x='1')"]),
    ("user_decorator_inside", """
import functools
def timed(f):
    @functools.wraps(f)
    def inner(*args, **kwargs):
        return f(*args, **kwargs)
    return inner
@input_schema("x", SP(1))
@timed
def run(x):
    return x
""", ["run(x=1)", "run(x='1')", "run(1)"]),
    ("custom_type", """
class Upper(AP):
    def deserialize_input(self, input_data):
        return str(input_data).upper()
    def input_to_swagger(self):
        return {"type": "string", "example": self.sample_input}
@input_schema("s", Upper("abc"))
@output_schema(Upper("X"))
def run(s):
    return s
""", ["run(s='abc')", "run(s=1)", "run(s=b'x')", "Upper('a').supported_versions()",
      "Upper(['a', 1]).supported_versions()"]),
    ("custom_type_abstract", """
class Half(AP):
    def input_to_swagger(self):
        return {"type": "string", "example": "x"}
h = Half(1)
""", []),
    ("custom_type_no_example", """
class NoExample(AP):
    def deserialize_input(self, input_data):
        return input_data
    def input_to_swagger(self):
        return {"type": "string"}
@input_schema("s", NoExample("abc"))
def run(s):
    return s
""", []),
    ("custom_type_dict_sample", """
class DictType(AP):
    def deserialize_input(self, input_data):
        return input_data
    def input_to_swagger(self):
        return {"type": "object", "example": self.sample_input}
@input_schema("s", DictType({"a": 1}))
def run(s):
    return s
""", ["run(s={'a': 2})", "run(s=[1])"]),
    ("kwonly", """
@input_schema("k", SP(1))
def run(a, *, k=1):
    return [a, k]
""", ["run(a=1, k=2)", "run(1, k='x')", "run(1)"]),
    ("lambda", """
run = input_schema("x", SP(1))(lambda x: x)
""", ["run(x=1)", "run(x='1')"]),
    ("reload", """
@input_schema("x", SP(1))
@output_schema(SP(1))
def run(x):
    return x
""", ["run(x=1)"]),
]
# run again in the same module name: what a reload of the entry script does to the registry
RELOADED = {"reload"}


# ---------------------------------------------------------------------------------------------------
# The child: imports one library and runs the table

def _child(root, prefixes):
    sys.path.insert(0, root)
    import copy
    import datetime as dt
    import inspect
    import re
    import types
    import warnings

    import numpy as np
    import pandas as pd

    import importlib

    def load(module, name):  # a missing one fails each probe that uses it, not the run
        try:
            return getattr(importlib.import_module("inference_schema." + module), name)
        except Exception as e:  # noqa: BLE001
            error = e

            def missing(*args, **kwargs):
                raise error
            return missing

    from inference_schema import schema_util
    from inference_schema.parameter_types.abstract_parameter_type import AbstractParameterType as AP
    from inference_schema.schema_decorators import input_schema
    SP = load("parameter_types.standard_py_parameter_type", "StandardPythonParameterType")
    NP = load("parameter_types.numpy_parameter_type", "NumpyParameterType")
    PD = load("parameter_types.pandas_parameter_type", "PandasParameterType")

    warnings.simplefilter("always")
    ns = {"np": np, "pd": pd, "dt": dt, "SP": SP, "NP": NP, "PD": PD, "AP": AP}
    address = re.compile(r" at 0x[0-9a-f]+")
    results = {}
    counter = []

    def describe(v, depth=0):
        if depth > 8:
            return "..."
        if v is None or type(v) in (bool, int, str):
            return [type(v).__name__, v]
        if type(v) is float:
            return ["float", repr(v)]
        if type(v) in (list, tuple):
            return [type(v).__name__, [describe(x, depth + 1) for x in v]]
        if type(v) is dict:
            return ["dict", [[repr(k), describe(x, depth + 1)] for k, x in v.items()]]
        if isinstance(v, np.ndarray):
            return ["ndarray", str(v.dtype), list(v.shape), describe(v.tolist(), depth + 1)]
        if isinstance(v, pd.DataFrame):
            return ["DataFrame", [repr(c) for c in v.columns], [str(t) for t in v.dtypes],
                    [repr(i) for i in v.index], describe(v.astype(object).values.tolist(), depth + 1)]
        return [type(v).__name__, address.sub("", repr(v))]

    def failure(e):
        return {"raises": type(e).__module__.replace("builtins", "") + ":" + type(e).__name__,
                "message": address.sub("", str(e))}

    def attempt(fn):
        with warnings.catch_warnings(record=True) as caught:
            try:
                out = {"returns": fn()}
            except Exception as e:  # noqa: BLE001 - every exception is a result here
                out = failure(e)
        if caught:
            out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
        return out

    def as_json(v):
        return json.dumps(v)

    def wanted(key):
        return not prefixes or any(key.startswith(p) for p in prefixes)

    def probe_type(group, expr, inputs):
        key = f"{group}/{expr}"
        if not wanted(key):
            return
        built = attempt(lambda: eval(expr, ns))
        if "returns" not in built:
            results[key + "/construct"] = built
            return
        ptype = built["returns"]
        results[key + "/construct"] = {k: v for k, v in built.items() if k != "returns"}
        results[key + "/input_to_swagger"] = attempt(lambda: as_json(ptype.input_to_swagger()))
        results[key + "/supported_versions"] = attempt(lambda: describe(ptype.supported_versions()))
        results[key + "/sample_data_type"] = attempt(lambda: ptype.sample_data_type.__name__)
        counter.append(expr)
        mod = types.ModuleType("probe_" + str(len(counter)))
        mod.__dict__.update(ns, T=ptype, input_schema=input_schema)
        decorated = attempt(lambda: exec("@input_schema('x', T)\ndef run(x):\n    return x\n", mod.__dict__))
        results[key + "/decorate"] = decorated
        for text in inputs:
            value = eval(text, ns)
            results[f"{key}/deserialize_input({text})"] = attempt(
                lambda: describe(ptype.deserialize_input(copy.deepcopy(value))))
            if "returns" in decorated:
                results[f"{key}/run(x={text})"] = attempt(lambda: describe(mod.run(x=copy.deepcopy(value))))

    for expr in STANDARD_SAMPLES:
        probe_type("standard", f"SP({expr})", STANDARD_INPUTS)
    for expr in NUMPY_SAMPLES:
        probe_type("numpy", expr, NUMPY_INPUTS)
    for expr in PANDAS_SAMPLES:
        probe_type("pandas", expr, PANDAS_INPUTS)

    def scenario(name, source, calls, module_name):
        key = f"scenario/{name}"
        mod = types.ModuleType(module_name)
        mod.__dict__.update(SP=SP, NP=NP, PD=PD, AP=AP)
        results[key + "/exec"] = attempt(lambda: exec(HEADER + source, mod.__dict__) and None)
        run = mod.__dict__.get("run")
        if run is None:
            return
        results[key + "/registry"] = attempt(lambda: {
            "is_schema_decorated": schema_util.is_schema_decorated(run),
            "input": as_json(schema_util.get_input_schema(run)),
            "output": as_json(schema_util.get_output_schema(run)),
            "versions": schema_util.get_supported_versions(run),
            "schemas_dict": as_json({k: v for k, v in schema_util.get_schemas_dict().items()
                                     if k.startswith(module_name + ".")})})
        results[key + "/run.type"] = type(run).__name__
        results[key + "/run.attributes"] = attempt(lambda: {
            "name": run.__name__, "qualname": run.__qualname__, "module": run.__module__, "doc": run.__doc__,
            "is_function": isinstance(run, types.FunctionType), "callable": callable(run),
            "wrapped": describe(getattr(run, "__wrapped__", None)) if name == "undecorated" else
            getattr(getattr(run, "__wrapped__", None), "__name__", None)})
        results[key + "/run.signature"] = attempt(lambda: str(inspect.signature(run)))
        results[key + "/run.getfullargspec"] = attempt(lambda: str(inspect.getfullargspec(run)))
        for call in calls:
            results[f"{key}/{call}"] = attempt(lambda: describe(eval(call, mod.__dict__)))

    for name, source, calls in SCENARIOS:
        if wanted(f"scenario/{name}"):
            scenario(name, source, calls, "scenario_" + name)
            if name in RELOADED:
                scenario(name + "_again", source, calls, "scenario_" + name)

    if wanted("modules/"):
        for module in ("inference_schema", "inference_schema.schema_decorators", "inference_schema.schema_util",
                       "inference_schema.parameter_types",
                       "inference_schema.parameter_types.abstract_parameter_type",
                       "inference_schema.parameter_types.standard_py_parameter_type",
                       "inference_schema.parameter_types.numpy_parameter_type",
                       "inference_schema.parameter_types.pandas_parameter_type",
                       "inference_schema.parameter_types.spark_parameter_type"):
            def public(module=module):
                m = importlib.import_module(module)
                return sorted(n for n, v in vars(m).items() if not n.startswith("_") and callable(v)
                              and getattr(v, "__module__", "") == module)
            results[f"modules/{module}"] = attempt(public)

    json.dump(results, sys.stdout)


# ---------------------------------------------------------------------------------------------------
# The parent: runs both children and compares

def _run_child(root, prefixes):
    env = dict(os.environ, PYTHONHASHSEED="0")  # pandas names unexpected keys in set order
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", root, *prefixes],
                          capture_output=True, text=True, cwd=HERE, env=env)
    if proc.returncode != 0:
        sys.exit(f"the probes failed with the library at {root}:\n{proc.stderr}")
    return json.loads(proc.stdout)


def _deliberate(key):
    """The DELIBERATE pattern that covers key, if any."""
    for pattern in DELIBERATE:
        head, star, tail = pattern.partition("*")
        if key == pattern or (star and key.startswith(head) and key.endswith(tail)):
            return pattern
    return None


def main(argv):
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2:])
    verbose = argv[:1] in (["-v"], ["--verbose"])
    prefixes = argv[1:] if verbose else argv
    if not os.path.isfile(os.path.join(REAL, "inference_schema", "schema_decorators.py")):
        print(f"The real inference-schema is not at {REAL}.\nSet it up with "
              "`bash tests/differential/setup_reference.sh` (it puts inference-schema 1.7.2 in "
              "/tmp/azmlinfsrv-reference/src/schema), or point INFERENCE_SCHEMA_ROOT at a checkout of "
              "https://github.com/Azure/InferenceSchema (the folder holding inference_schema/).", file=sys.stderr)
        return 2
    real = _run_child(REAL, prefixes)
    ours = _run_child(STAND_IN, prefixes)
    differing, deliberate = 0, {}
    for key in sorted(set(real) | set(ours)):
        a, b = real.get(key, "<no result>"), ours.get(key, "<no result>")
        if a == b:
            if verbose:
                print(f"same        {key}")
            continue
        pattern = _deliberate(key)
        if pattern:
            deliberate.setdefault(pattern, []).append(key)
            continue
        differing += 1
        print(f"DIFFERS     {key}\n    real:      {json.dumps(a)}\n    stand-in:  {json.dumps(b)}")
    for pattern, keys in deliberate.items():
        print(f"deliberate  {pattern} ({len(keys)} probe{'s' if len(keys) > 1 else ''}): {DELIBERATE[pattern]}")
        if verbose:
            print("".join(f"    {key}\n" for key in keys), end="")
    print(f"{len(set(real) | set(ours))} probes: {differing} differ, "
          f"{sum(map(len, deliberate.values()))} differ on purpose")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
