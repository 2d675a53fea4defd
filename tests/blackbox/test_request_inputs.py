"""Checklist items 18, 21, 48, 49: TraceId, form-encoded bodies, request_headers, legacy import paths."""
import pytest

from bb_http import request


@pytest.mark.parametrize("method,path", [("POST", "/score"), ("GET", "/"), ("GET", "/swagger.json"),
                                         ("OPTIONS", "/score")])
def test_c18_traceid_echo(echo_server, method, path):
    r = request(echo_server.port, method, path, headers={"TraceId": "t1"}, body=b"x" if method == "POST" else None)
    assert r.status == 200, r
    assert r.all("TraceId") == ["t1"], r
    assert any(k == "TraceId" for k, _ in r.headers), "response header name is TraceId"


def test_c18_traceid_case_insensitive_and_absent(echo_server):
    r = request(echo_server.port, "POST", "/score", headers={"traceid": "t2"}, body=b"x")
    assert r.all("TraceId") == ["t2"], r
    r = request(echo_server.port, "POST", "/score", body=b"x")
    assert not r.has("TraceId"), r
    # not on routing errors (family B)
    r = request(echo_server.port, "GET", "/nope", headers={"TraceId": "t3"})
    assert r.status == 404 and not r.has("TraceId"), r


def test_c21_form_body_reaches_run_as_empty(server):
    s = server.start("echo_input.py")
    for ct, body in (("application/x-www-form-urlencoded", b"a=1"),
                     ("application/x-www-form-urlencoded; charset=utf-8", b"a=1&b=2"),
                     ("multipart/form-data; boundary=XyZ",
                      b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n")):
        r = request(s.port, "POST", "/score", headers={"Content-Type": ct}, body=body)
        assert r.status == 200, r
        assert r.json() == {"received": "", "type": "str"}, (ct, r)
    # docs/differences.md: one WARNING per worker naming the Content-Type and how to send JSON instead
    m = s.wait_for_log(r"^.* W \[\d+\] azmlinfsrv[\w.]* - .*application/x-www-form-urlencoded.*$")
    assert "application/json" in m.group(0), m.group(0)
    assert s.count_log(r" W \[\d+\] azmlinfsrv[\w.]* - .*form") == 1, s.logs()
    # a plain body is not affected
    r = request(s.port, "POST", "/score", headers={"Content-Type": "text/plain"}, body=b"a=1")
    assert r.json() == {"received": "a=1", "type": "str"}


def test_c48_request_headers_title_case(server):
    s = server.start("headers_echo.py")
    r = request(s.port, "POST", "/score",
                headers=[("test-header", "v1"), ("X-lower-CASE", "v2"), ("Content-Type", "text/plain")], body=b"d")
    assert r.status == 200, r
    j = r.json()
    assert j["type"] == "dict"
    assert j["data"] == "d"
    h = j["headers"]
    assert h.get("Test-Header") == "v1", h
    assert h.get("X-Lower-Case") == "v2", h
    assert h.get("Content-Type") == "text/plain", h
    assert h.get("Host") == "127.0.0.1", h
    assert h.get("Content-Length") == "1", h
    assert "test-header" not in h
    # GET: data is the query as JSON, headers still passed
    r = request(s.port, "GET", "/score?a=1", headers={"test-header": "g"})
    j = r.json()
    assert j["data"] == '{"a": 1}' and j["headers"]["Test-Header"] == "g", j


@pytest.fixture(scope="module")
def contrib_server(session_servers):
    return session_servers.start("contrib_imports.py")


def test_c49_contrib_imports(contrib_server):
    s = contrib_server
    r = request(s.port, "POST", "/score", body=b"x")
    assert r.status == 200, r
    j = r.json()
    assert j["same_response_class"] is True and j["same_rawhttp"] is True, j
    assert j["amlrequest_name"] == "AMLRequest"
    # importing rawhttp does not switch to raw mode: only applying it does
    s.wait_for_log(r"run\(\) is not decorated\. Server will invoke it with the input in JSON string\.$")


def test_c49_no_real_azureml_package(contrib_server):
    # docs/behaviour.md 4.8: only the two leaf modules are aliased; `import azureml...` itself still fails
    s = contrib_server
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j["plain_import"] == "ModuleNotFoundError: No module named 'azureml'", j
