"""docs/writing-score-py.md: every example script it shows is a file under docs/examples/ (or examples/),
shown verbatim, and every response it shows is what the server answers for that script."""
import os
import re

import pytest

from bb_http import request
from conftest import FIXTURES, REPO

DOCS = os.path.join(REPO, "docs")
PAGE = os.path.join(DOCS, "writing-score-py.md")
EX = os.path.join(DOCS, "examples")
PYLIB = {"PYTHONPATH": os.path.join(FIXTURES, "pylib")}  # inference-schema stand-in
JSON = {"Content-Type": "application/json"}
MSG_SCRIPT = '{"message": "An unexpected error occurred in scoring script. Check the logs for more info."}'


@pytest.fixture(scope="module")
def page():
    with open(PAGE) as f:
        return f.read()


def _dedent_lines(text):
    return "\n".join(line.strip() for line in text.splitlines())


def shown(page, text):
    """The page shows text (compared line by line, ignoring indentation: examples sit in list items)."""
    assert _dedent_lines(text) in _dedent_lines(page), f"docs/writing-score-py.md does not show {text!r}"


@pytest.mark.parametrize("name", ["hello.py", "headers.py", "raw.py", "schema.py", "numpy_output.py",
                                  "responses.py", "model_dir.py"])
def test_docs_example_shown_verbatim(page, name):
    with open(os.path.join(EX, name)) as f:
        src = f.read()
    assert f"](examples/{name})" in page, f"the page does not link examples/{name}"
    assert f"```python\n{src}```" in page, f"the page's copy of examples/{name} differs from the file"


def test_docs_streaming_excerpt_matches_file(page):
    with open(os.path.join(REPO, "examples", "streaming", "score.py")) as f:
        src = f.read()
    m = re.search(r"\(excerpt\):\n\n```python\n(.*?)```", page, re.S)
    assert m, "streaming excerpt not found"
    for line in m.group(1).splitlines():
        if line.strip() and line.strip() != "...":
            assert line in src.splitlines(), f"excerpt line not in examples/streaming/score.py: {line!r}"


def test_docs_hello(server, page):
    s = server.start(os.path.join(EX, "hello.py"), cwd=EX)
    r = request(s.port, "POST", "/score", headers=JSON, body='{"values": [1, 2, 3]}')
    assert r.status == 200 and r.text == '{"doubled": [2, 4, 6]}', r
    shown(page, "-d '{\"values\": [1, 2, 3]}'\n" + r.text)
    r = request(s.port, "GET", "/score?values=[1,2]")
    assert r.status == 200 and r.text == '{"doubled": [2, 4]}', r
    shown(page, "'127.0.0.1:5001/score?values=[1,2]'\n" + r.text)
    # curl -d without a Content-Type: a form body, run() gets ""
    mark = s.mark()
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/x-www-form-urlencoded"},
                body='{"values": [1]}')
    assert r.status == 500 and r.text == MSG_SCRIPT, r
    shown(page, "json.loads(\"\") raises\n" + r.text)
    s.wait_for_log(r" W \[\d+\] azmlinfsrv[\w.]* - .*application/x-www-form-urlencoded", since=mark)
    mark = s.mark()
    r = request(s.port, "POST", "/score", headers=JSON, body="not json")
    assert r.status == 500 and r.text == MSG_SCRIPT, r
    assert r.one("x-ms-run-function-failed") == "True"
    shown(page, "-d 'not json'\n" + r.text)
    m = s.wait_for_log(r"^json\.decoder\.JSONDecodeError: .*$", since=mark)
    shown(page, m.group(0))
    m = s.wait_for_log(r" E \[\d+\] azmlinfsrv - Encountered Exception: Traceback \(most recent call last\):$",
                       since=mark)
    shown(page, m.group(0).split("] ", 1)[1])
    shown(page, "    data = json.loads(raw_data)  # invalid JSON raises here: the client gets a 500")
    m = s.wait_for_log(r"I \[\d+\] azmlinfsrv\.print - hello\.py is ready$")
    shown(page, m.group(0).split("] ", 1)[1])


def test_docs_headers(server, page):
    s = server.start(os.path.join(EX, "headers.py"), cwd=EX)
    r = request(s.port, "POST", "/score", headers={"x-tenant": "contoso", "Content-Type": "text/plain"}, body="hi")
    assert r.status == 200 and r.text == '{"tenant": "contoso", "body": "hi"}', r
    shown(page, "-d 'hi'\n" + r.text)


def test_docs_raw(server, page):
    s = server.start(os.path.join(EX, "raw.py"), cwd=EX)
    r = request(s.port, "GET", "/score?name=Ada")
    assert r.status == 200 and r.text == '{"greeting": "Hello, Ada!"}', r
    shown(page, "'127.0.0.1:5001/score?name=Ada'\n" + r.text)
    r = request(s.port, "POST", "/score", headers={**JSON, "User-Agent": "my-client/1.0"}, body='{"b": 1, "a": 2}')
    assert r.status == 200 and r.text == '{"keys": ["a", "b"], "user_agent": "my-client/1.0"}', r
    shown(page, "-A my-client/1.0\n" + r.text)
    r = request(s.port, "POST", "/score", headers={"Content-Type": "text/plain"}, body="x")
    assert r.status == 415 and r.text == "expected JSON, got text/plain", r
    shown(page, "# status 415\n" + r.text)
    for method in ("OPTIONS", "HEAD"):
        r = request(s.port, method, "/score")
        assert r.status == 200 and r.body == b"", r


def test_docs_schema(server, page):
    s = server.start(os.path.join(EX, "schema.py"), cwd=EX, env=PYLIB)
    cases = [
        (JSON, '{"data": [[1, 2], [3, 4]], "scale": 10}', 200, '{"sums": [30.0, 70.0]}'),
        (JSON, '{"data": [[1, 2]]}', 200, '{"sums": [3.0]}'),
        (JSON, '{"scale": 2}', 400, '{"message": "A value is not provided for the \'data\' parameter."}'),
        ({"Content-Type": "text/plain"}, '{"data": [[1, 2]]}', 415,
         '{"message": "Expects Content-Type to be application/json"}'),
    ]
    for headers, body, status, expected in cases:
        r = request(s.port, "POST", "/score", headers=headers, body=body)
        assert r.status == status and r.text == expected, (body, r)
        shown(page, f"-H 'Content-Type: {headers['Content-Type']}' -d '{body}'\n{expected}")


def test_docs_numpy_output(server, page):
    s = server.start(os.path.join(EX, "numpy_output.py"), cwd=EX)
    r = request(s.port, "GET", "/score")
    assert r.status == 200 and r.text == '{"values": [0.0, 1.5, 3.0]}', r
    shown(page, "$ curl -s 127.0.0.1:5001/score\n" + r.text)
    r = request(s.port, "GET", "/score?as=array")
    assert r.status == 500, r
    assert r.text == '{"message": "An unexpected internal error occurred. Check the logs for more info."}'
    shown(page, "'127.0.0.1:5001/score?as=array'\n" + r.text)
    m = s.wait_for_log(r" E \[\d+\] azmlinfsrv - (run\(\) returned a numpy\.ndarray.*)$")
    shown(page, " ".join(m.group(1).split()[:8]))


def test_docs_responses(server, page):
    s = server.start(os.path.join(EX, "responses.py"), cwd=EX)
    r = request(s.port, "POST", "/score", headers=JSON, body='{"name": "Ada"}')
    assert r.status == 200 and r.text == "Hello, Ada!", r
    assert r.all("Content-Type") == ["text/plain"], r
    assert r.all("Cache-Control") == ["no-cache", "no-store"], r
    shown(page, "HTTP/1.1 200 OK\nContent-Type: text/plain\nCache-Control: no-cache\nCache-Control: no-store\n"
                "...\nHello, Ada!")
    r = request(s.port, "POST", "/score", headers=JSON, body="{}")
    assert r.status == 400 and r.text == '{"error": "name is required"}', r
    assert r.one("Content-Type") == "application/json"
    shown(page, "-d '{}'      # status 400\n" + r.text)


def test_docs_model_dir(server, page):
    s = server.start(os.path.join(EX, "model_dir.py"), cwd=EX, args=["--model_dir", "model"])
    s.wait_for_log(r"azmlinfsrv\.print - loaded 3 weights from model/model\.json$")
    r = request(s.port, "POST", "/score", headers=JSON, body='{"data": [[1, 2, 3], [4, 0, 2]]}')
    assert r.status == 200 and r.text == "[1.5, 0.0]", r
    shown(page, "-d '{\"data\": [[1, 2, 3], [4, 0, 2]]}'\n" + r.text)
    with open(os.path.join(EX, "model", "model.json")) as f:
        shown(page, "`model.json` = `" + f.read().strip() + "`")


def test_docs_streaming(server, page):
    script = os.path.join(REPO, "examples", "streaming", "score.py")
    s = server.start(script, cwd=os.path.dirname(script))
    r = request(s.port, "GET", "/score?n=3&delay=0.1")
    assert r.status == 200, r
    assert r.chunks == [b"line 1 of 3\n", b"line 2 of 3\n", b"line 3 of 3\n"], r
    shown(page, "$ curl -N '127.0.0.1:5001/score?n=3&delay=0.5'\n" + r.text)
