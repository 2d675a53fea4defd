"""The native JSON encoder (issue 7) must write exactly what json.dumps writes (docs/behaviour.md 3.2, 4.5):
property tests with hypothesis over the real server, against json.dumps in this process."""
import base64
from http import HTTPStatus
import json
import math
import os
import pickle
from collections import OrderedDict

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from bb_http import Conn  # noqa: E402


@pytest.fixture(scope="module")
def encoder_server(session_servers):
    return session_servers.start("unpickle_return.py")


def served_json(conn, value):
    body = base64.b64encode(pickle.dumps(value))
    r = conn.request("POST", "/score", headers={"Content-Type": "text/plain"}, body=body)
    return r


# Every JSON-able shape json.dumps handles natively, with the awkward corners weighted in: floats
# (NaN, infinities, -0.0, subnormals, huge ints), every kind of str (ASCII, DEL, control characters,
# non-BMP, lone surrogates), non-str dict keys, tuples, nesting.
keys = st.one_of(st.text(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none())
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=5),
    st.lists(children, max_size=5).map(tuple),
    st.dictionaries(keys, children, max_size=5)), max_leaves=25)


# Fewer examples on the sanitizer build, where each request costs several times more.
@settings(max_examples=60 if os.environ.get("AZMLINFSRV_SANITIZED") == "1" else 300, deadline=None)
@given(value=values)
def test_native_encoding_equals_json_dumps(encoder_server, value):
    with Conn(encoder_server.port) as conn:
        r = served_json(conn, value)
    assert r.status == 200, r
    expected = "{}" if value is None else json.dumps(value)  # run() returning None answers {} (4.5)
    assert r.body == expected.encode("ascii")


@pytest.mark.parametrize("value", [
    float("nan"), float("inf"), -float("inf"), -0.0, 1e16, 1.5e-323, 0.1 + 0.2, 10 ** 100, -(2 ** 63),
    "\x7f", "\u00e9", "\U0001F600", "\ud800", '"\\\n\r\t\b\f\x00\x1f', {1: "a", 2.5: "b", True: "c", None: "d"},
    HTTPStatus.OK, {"k": HTTPStatus.NOT_FOUND}, [[[[]]]], (), {},
])
def test_corner_cases_equal_json_dumps(encoder_server, value):
    with Conn(encoder_server.port) as conn:
        assert served_json(conn, value).body == json.dumps(value).encode("ascii")


def nested(depth):
    value = [1]
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("value", [
    OrderedDict([("b", 1), ("a", 2)]),  # a dict subclass: json.dumps decides
    nested(100),                        # deeper than the native encoder goes
])
def test_shapes_left_to_json_dumps_still_equal_it(encoder_server, value):
    with Conn(encoder_server.port) as conn:
        assert served_json(conn, value).body == json.dumps(value).encode("ascii")


def test_values_json_dumps_refuses_are_the_internal_error(encoder_server):
    for value in ({(1, 2): "tuple key"}, {1, 2}, b"bytes", [1, {2, 3}]):
        with Conn(encoder_server.port) as conn:
            r = served_json(conn, value)
        assert r.status == 500, value
        assert r.json() == {"message": "An unexpected internal error occurred. Check the logs for more info."}
