"""Checklist items 43-47 and 53: inference-schema decorated run() ("object mode", docs/behaviour.md 4.3, 4.4, 5.1).

inference-schema is not packaged in Debian; tests/fixtures/pylib holds a stand-in with the same surface,
put on the server's sys.path through PYTHONPATH."""
import json
import os
import re

import pytest

from bb_http import Conn, request
from conftest import FIXTURES

PYLIB = {"PYTHONPATH": os.path.join(FIXTURES, "pylib")}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="session")
def schema_server(session_servers):
    return session_servers.start("schema_num.py", env=PYLIB)


@pytest.fixture(scope="session")
def schema_default_server(session_servers):
    return session_servers.start("schema_num_default.py", env=PYLIB)


def msg(r):
    return r.body.decode()


def test_c43_object_mode_post(schema_server):
    r = request(schema_server.port, "POST", "/score", headers=JSON, body='{"num": 10}')
    assert r.status == 200, r
    assert r.json() == {"num": 10, "type": "int"}
    assert r.one("x-ms-run-function-failed") == "False"
    schema_server.wait_for_log(r"azmlinfsrv.user_script - run\(\) is decorated with @input_schema\. Server will invoke "
                               r"it with the following arguments: num\.$")


def test_c43_object_mode_values_are_parsed_json(schema_server):
    r = request(schema_server.port, "POST", "/score", headers=JSON, body='{"num": true}')
    assert r.status == 200, r
    assert r.json() == {"num": True, "type": "bool"}  # a bool is an int to inference-schema
    # a value of another type: inference-schema's decorator raises before run() (the real package's
    # ValueError), and the server answers as for any exception of the script
    since = schema_server.mark()
    r = request(schema_server.port, "POST", "/score", headers=JSON, body='{"num": [1, {"a": null}]}')
    assert r.status == 500, r
    assert r.one("x-ms-run-function-failed") == "True"
    schema_server.wait_for_log(r"^ValueError: Invalid input data type to parse\. Expected: <class 'int'> but got "
                               r"<class 'list'>$", since=since)


def test_c44_object_mode_get_query(schema_server):
    r = request(schema_server.port, "GET", "/score?num=10")
    assert r.status == 200, r
    assert r.json() == {"num": 10, "type": "int"}
    r = request(schema_server.port, "GET", "/score?num=10&other=x&z=1")  # extra keys ignored
    assert r.status == 200, r
    assert r.json() == {"num": 10, "type": "int"}
    since = schema_server.mark()
    r = request(schema_server.port, "GET", "/score?num=abc")  # not JSON: stays a string, which is not an int
    assert r.status == 500, r
    schema_server.wait_for_log(r"^ValueError: Invalid input data type to parse\. Expected: <class 'int'> but got "
                               r"<class 'str'>$", since=since)
    r = request(schema_server.port, "POST", "/score", headers=JSON, body='{"num": 3, "extra": true}')
    assert r.status == 200 and r.json() == {"num": 3, "type": "int"}, r


def test_c45_missing_parameter_400(schema_server):
    for method, target, body in (("POST", "/score", "{}"), ("POST", "/score", '{"other": 1}'), ("GET", "/score", None),
                                 ("GET", "/score?x=1", None)):
        r = request(schema_server.port, method, target, headers=JSON if body else None, body=body)
        assert r.status == 400, (method, target, r)
        assert msg(r) == '{"message": "A value is not provided for the \'num\' parameter."}'
        assert r.one("content-type") == "application/json"
        assert r.one("x-ms-run-function-failed") == "False"
        assert not r.has("x-ms-run-fn-exec-ms")


def test_c45_default_used(schema_default_server):
    r = request(schema_default_server.port, "POST", "/score", headers=JSON, body="{}")
    assert r.status == 200, r
    assert r.json() == {"num": 1, "test_header": None}
    r = request(schema_default_server.port, "GET", "/score")
    assert r.status == 200 and r.json()["num"] == 1, r
    r = request(schema_default_server.port, "GET", "/score?num=5", headers={"test-header": "th"})
    assert r.json() == {"num": 5, "test_header": "th"}  # request_headers works in object mode too


def test_c45_defaults_passed_by_keyword(server):
    # inference-schema's decorator converts a parameter it finds among the keyword arguments, else among the
    # positional ones: a defaulted parameter the request leaves out must still be passed, as the reference passes
    # it (its default), or the decorator fails with an IndexError and every such request is a 500.
    s = server.start("schema_defaulted.py", env=PYLIB)
    for method, target, body, expected in (("POST", "/score", '{"num": 3}', {"num": 3, "opt": 7}),
                                           ("GET", "/score?num=4", None, {"num": 4, "opt": 7}),
                                           ("POST", "/score", '{"num": 3, "opt": 9}', {"num": 3, "opt": 9})):
        r = request(s.port, method, target, headers=JSON if body else None, body=body)
        assert r.status == 200, (method, target, r, s.logs())
        assert r.json() == expected
    assert "IndexError" not in s.stdout()


@pytest.mark.parametrize("ct", ["text/plain", "application/x-www-form-urlencoded", None, "application/jsonx",
                                "text/json"])
def test_c46_wrong_content_type_415(schema_server, ct):
    r = request(schema_server.port, "POST", "/score", headers={"Content-Type": ct} if ct else None,
                body='{"num": 10}')
    assert r.status == 415, (ct, r)
    assert msg(r) == '{"message": "Expects Content-Type to be application/json"}'
    assert r.one("x-ms-run-function-failed") == "False"


@pytest.mark.parametrize("ct", ["application/json", "application/vnd.x+json", "application/json; charset=utf-8",
                                "Application/JSON"])
def test_c46_json_content_types_accepted(schema_server, ct):
    r = request(schema_server.port, "POST", "/score", headers={"Content-Type": ct}, body='{"num": 7}')
    assert r.status == 200, (ct, r)
    assert r.json() == {"num": 7, "type": "int"}


@pytest.mark.parametrize("body,message", [
    ("", "POST body is empty. Expecting a JSON dictionary."),
    ("{", "POST body could not be decoded as JSON: Expecting property name enclosed in double quotes: "
          "line 1 column 2 (char 1)"),
    ("[1,2,3]", "POST body should be a JSON dictionary."),
    ('"num"', "POST body should be a JSON dictionary."),
])
def test_c47_bad_bodies_400(schema_server, body, message):
    r = request(schema_server.port, "POST", "/score", headers=JSON, body=body)
    assert r.status == 400, r
    assert r.json() == {"message": message}
    assert msg(r) == json.dumps({"message": message})
    assert r.one("x-ms-run-function-failed") == "False"


def test_object_mode_options_and_head(schema_server):
    r = request(schema_server.port, "OPTIONS", "/score")
    assert r.status == 200 and r.body == b"", r
    with Conn(schema_server.port) as c:
        r = c.request("HEAD", "/score")
        assert r.status == 405, r
        assert r.one("content-length") == "33"
        assert c.pending_bytes(wait=0.2) == b""


def test_object_mode_swagger(schema_server):
    doc = json.loads(request(schema_server.port, "GET", "/swagger.json").body)
    assert doc["definitions"]["ServiceInput"] == {
        "type": "object", "properties": {"num": {"type": "integer", "format": "int64"}}, "example": {"num": 1}}


def test_c53_swagger_mixed_list(server):
    s = server.start("schema_mixed_list.py", env=PYLIB)
    r = request(s.port, "GET", "/swagger.json?version=2")
    assert r.status == 404, r
    assert r.json() == {"message": "Swagger version [2] is not supported for the scoring script. "
                                   "Supported swagger versions: [3, 3.1]."}
    r = request(s.port, "GET", "/swagger.json")  # no version means 2
    assert r.status == 404, r
    r = request(s.port, "GET", "/swagger.json?version=3")
    assert r.status == 200, r
    doc = r.json()
    assert doc["openapi"] == "3.0.3"
    assert "data" in doc["components"]["schemas"]["ServiceInput"]["properties"]
    r = request(s.port, "GET", "/swagger.json?version=3.1")
    assert r.status == 200 and r.json()["openapi"] == "3.1.0", r
    r = request(s.port, "GET", "/swagger.json?version=4")
    assert r.status == 404, r
    assert r.json() == {"message": "Swagger version [4] is not valid. Supported versions: [3, 3.1]."}
    s.wait_for_log(r"azmlinfsrv.swagger - Swaggers are prepared for versions \[3, 3\.1\] and skipped for versions "
                   r"\[2\]\.$")
    # scoring itself is unaffected
    r = request(s.port, "POST", "/score", headers=JSON, body='{"data": [2, "b"]}')
    assert r.status == 200 and r.json() == {"data": [2, "b"]}, r


def test_c53_user_swagger_files_served_for_every_version(server, tmp_path):
    # The reference reads the user's files first, for every version, whatever run()'s schemas support; an empty
    # (false) document does not count: for version 2 it goes on to swagger2.json, then to the generated one.
    (tmp_path / "swagger.json").write_text("{}")
    (tmp_path / "swagger2.json").write_text('{"mine": 2}')
    s = server.start(os.path.join(FIXTURES, "schema_mixed_list.py"), env=dict(PYLIB, AML_APP_ROOT=str(tmp_path)))
    r = request(s.port, "GET", "/swagger.json")
    assert r.status == 200 and r.body == b'{"mine": 2}', r
    assert request(s.port, "GET", "/swagger.json?version=3.1").json()["openapi"] == "3.1.0"
    r = request(s.port, "GET", "/swagger.json?version=4")
    assert r.json() == {"message": "Swagger version [4] is not valid. Supported versions: [2, 3, 3.1]."}
    for name in ("swagger.json", "swagger2.json"):
        s.wait_for_log(r"azmlinfsrv\.swagger - Loaded user's swagger file for version \[2\] from "
                       + re.escape(str(tmp_path / name)) + "$")
    s.wait_for_log(r"azmlinfsrv\.swagger - Swaggers are prepared for the following versions: \[2, 3, 3\.1\]\.$")
