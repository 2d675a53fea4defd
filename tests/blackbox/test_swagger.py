"""Swagger documents (docs/behaviour.md 5, checklist 50-52, 54-56) for undecorated scripts.

The generated documents must equal the reference's expected ones, parsed and in key order."""
import json
import os

import pytest

from bb_http import request
from conftest import FIXTURES

EXPECTED = os.path.join(FIXTURES, "swagger")


def expected(name):
    with open(os.path.join(EXPECTED, name)) as f:
        return json.load(f)


def assert_same_document(body, want):
    got = json.loads(body)
    assert got == want
    # key order follows the template, at every level
    assert json.dumps(got) == json.dumps(want)


def test_c50_swagger_v2_default(echo_server):
    r = request(echo_server.port, "GET", "/swagger.json")
    assert r.status == 200
    assert r.one("Content-Type") == "application/json"
    assert r.has("x-request-id") and r.has("x-ms-server-version")
    assert_same_document(r.body, expected("expected_swagger2_without_decorator.json"))
    doc = json.loads(r.body)
    assert doc["swagger"] == "2.0" and doc["info"]["title"] == "ML service" and doc["info"]["version"] == "1.0"
    assert doc["definitions"]["ServiceInput"] == {"type": "object", "example": {}}
    assert list(doc["paths"]) == ["/", "/score", "/swagger.json"]
    # the body is json.dumps of the document: ", " and ": " separators
    assert r.body == json.dumps(doc).encode()


def test_c51_swagger_versions(echo_server):
    p = echo_server.port
    v3 = request(p, "GET", "/swagger.json?version=3")
    assert v3.status == 200
    assert_same_document(v3.body, expected("expected_swagger3_without_decorator.json"))
    assert request(p, "GET", "/swagger.json?version=3.0").body == v3.body
    v31 = request(p, "GET", "/swagger.json?version=3.1")
    assert_same_document(v31.body, expected("expected_swagger3.1_without_decorator.json"))
    assert json.loads(v31.body)["openapi"] == "3.1.0"
    v2 = request(p, "GET", "/swagger.json?version=2.0")
    assert json.loads(v2.body)["swagger"] == "2.0"


def test_c52_swagger_invalid_version(echo_server):
    r = request(echo_server.port, "GET", "/swagger.json?version=4")
    assert r.status == 404
    assert r.json() == {"message": "Swagger version [4] is not valid. Supported versions: [2, 3, 3.1]."}
    assert r.has("x-request-id")


def test_c54_service_path_prefix(server):
    s = server.start("echo_input.py", env={"SERVICE_PATH_PREFIX": "test"})
    doc = json.loads(request(s.port, "GET", "/swagger.json").body)
    want = expected("expected_swagger_prefix_case.json")  # a decorated script's: compare what the prefix changes
    assert list(doc["paths"]) == ["/test/", "/test/score", "/test/swagger.json"]
    assert json.dumps(doc["paths"]) == json.dumps(want["paths"])
    assert request(s.port, "POST", "/test/score", body="x").status == 404
    assert request(s.port, "POST", "/score", body="x").status == 200


def test_c55_service_name_and_version(server):
    s = server.start("echo_input.py", env={"SERVICE_NAME": "svc", "SERVICE_VERSION": "2.3"})
    doc = json.loads(request(s.port, "GET", "/swagger.json?version=3").body)
    assert doc["info"] == {"title": "svc", "description": "API specification for the Azure Machine Learning service svc",
                           "version": "2.3"}


def test_c56_user_swagger_files(server, tmp_path):
    (tmp_path / "swagger.json").write_text('{"mine": [1, 2]}')
    (tmp_path / "swagger3.json").write_text('"just a string"')
    s = server.start("echo_input.py", cwd=str(tmp_path))  # AML_APP_ROOT defaults to the CWD
    assert json.loads(request(s.port, "GET", "/swagger.json").body) == {"mine": [1, 2]}
    assert json.loads(request(s.port, "GET", "/swagger.json?version=3").body) == "just a string"
    assert json.loads(request(s.port, "GET", "/swagger.json?version=3.1").body)["openapi"] == "3.1.0"
    s.wait_for_log(r"azmlinfsrv.swagger - Loaded user's swagger file for version \[2\] from .*swagger.json$")


def test_swagger_head_and_options(echo_server):
    p = echo_server.port
    get = request(p, "GET", "/swagger.json")
    head = request(p, "HEAD", "/swagger.json")
    assert head.status == 200 and head.body == b""
    assert head.one("Content-Length") == str(len(get.body))
    options = request(p, "OPTIONS", "/swagger.json")
    assert options.status == 200 and options.one("Allow") == "GET, HEAD, OPTIONS"


# The header names, in order, the reference sends (observed; gunicorn's Connection left out, ours keeps alive).
_SWAGGER_HEADERS = ["Server", "Date", "Content-Type", "Content-Length", "x-ms-run-function-failed",
                    "x-ms-server-version", "x-request-id", "x-ms-request-id", "x-ms-client-request-id", "TraceId"]
_AUTOMATIC_OPTIONS_HEADERS = ["Server", "Date", "Content-Type", "Allow", "x-ms-server-version", "x-request-id",
                              "x-ms-request-id", "x-ms-client-request-id", "TraceId", "Content-Length"]


@pytest.mark.parametrize("method, target, status", [
    ("GET", "/swagger.json", 200), ("GET", "/swagger.json?version=3.1", 200), ("HEAD", "/swagger.json", 200),
    ("GET", "/swagger.json?version=4", 404), ("HEAD", "/swagger.json?version=4", 404),
])
def test_swagger_header_set(echo_server, method, target, status):
    # The reference answers /swagger.json, a 404 included, with AMLResponse(..., json_str=True).
    r = request(echo_server.port, method, target, headers={"x-ms-client-request-id": "c1", "TraceId": "t1"})
    assert r.status == status, r
    assert [name for name, _ in r.headers] == _SWAGGER_HEADERS, r
    assert r.one("x-ms-run-function-failed") == "False"


@pytest.mark.parametrize("target", ["/swagger.json", "/"])
def test_automatic_options_header_set(echo_server, target):
    # Flask's automatic OPTIONS answer is an empty Response: Werkzeug adds its Content-Length last.
    r = request(echo_server.port, "OPTIONS", target, headers={"x-ms-client-request-id": "c1", "TraceId": "t1"})
    assert r.status == 200 and r.body == b"", r
    assert [name for name, _ in r.headers] == _AUTOMATIC_OPTIONS_HEADERS, r
    assert r.one("Content-Length") == "0"


PYLIB = os.path.join(FIXTURES, "pylib")  # the inference-schema stand-in


def test_decorated_swagger_documents_equal_the_expected_ones(server):
    s = server.start("schema_numpy.py", env={"PYTHONPATH": PYLIB})
    for query, name in (("", "expected_swagger2.json"), ("?version=3", "expected_swagger3.json"),
                        ("?version=3.1", "expected_swagger3.1.json")):
        r = request(s.port, "GET", "/swagger.json" + query)
        assert r.status == 200
        assert_same_document(r.body, expected(name))
    # and the decorated run() is called in object mode with the converted input
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body='{"data": [1, 2, 3]}')
    assert r.json() == 6


def test_decorated_swagger_with_a_path_prefix_equals_the_expected_one(server):
    s = server.start("schema_numpy.py", env={"PYTHONPATH": PYLIB, "SERVICE_PATH_PREFIX": "/test/"})
    assert_same_document(request(s.port, "GET", "/swagger.json").body, expected("expected_swagger_prefix_case.json"))
