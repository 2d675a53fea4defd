"""The @rawhttp request without Flask (the stand-in) has the surface scripts use (docs/behaviour.md 4.4);
with Flask the server hands over a real flask.Request, built from the same environ."""
import json

import pytest

from azureml_inference_server_http._raw_request import StandInRequest, make_environ, make_request

HEADERS = [("Host", "example:5001"), ("Content-Type", "application/json; charset=utf-8"), ("X-Num", "7"),
           ("X-Multi", "a"), ("X-Multi", "b")]
BODY = b'{"k": [1, 2]}'


def stand_in(method="POST", target="/score?a=1&a=x&n=5", headers=HEADERS, body=BODY):
    environ = make_environ(method, target, headers, body, "10.0.0.1", 5001, "HTTP/1.1")
    return StandInRequest(environ, body)


def test_the_environ_has_the_wsgi_keys():
    env = make_environ("POST", "/sc%6Fre?a=1", HEADERS, BODY, "10.0.0.1", 5001, "HTTP/1.1")
    assert env["PATH_INFO"] == "/score" and env["QUERY_STRING"] == "a=1"
    assert env["REMOTE_ADDR"] == "10.0.0.1" and env["SERVER_PORT"] == "5001" and env["SCRIPT_NAME"] == ""
    assert env["CONTENT_TYPE"] == "application/json; charset=utf-8"
    assert env["HTTP_X_MULTI"] == "a,b" and env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input"].read() == BODY


def test_content_length_only_when_sent():
    # As gunicorn's environ: a chunked upload or a GET has none, and the whole body stays readable.
    env = make_environ("POST", "/score", [("Transfer-Encoding", "chunked")], BODY, "10.0.0.1", 5001, "HTTP/1.1")
    assert "CONTENT_LENGTH" not in env and env["wsgi.input_terminated"] is True
    assert StandInRequest(env, BODY).content_length is None
    env = make_environ("POST", "/score", [("Content-Length", str(len(BODY)))], BODY, "10.0.0.1", 5001, "HTTP/1.1")
    assert env["CONTENT_LENGTH"] == str(len(BODY)) and StandInRequest(env, BODY).content_length == len(BODY)


def test_with_flask_a_chunked_body_is_read():
    pytest.importorskip("flask")
    r = make_request("POST", "/score", [("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")],
                     b'{"a": 1}', "10.0.0.1", 5001, "HTTP/1.1")
    assert r.content_length is None and r.get_data() == b'{"a": 1}' and r.json == {"a": 1}
    assert "Content-Length" not in r.headers


def test_stand_in_surface():
    r = stand_in()
    assert r.method == "POST" and r.path == "/score" and r.full_path == "/score?a=1&a=x&n=5"
    assert r.url == "http://example:5001/score?a=1&a=x&n=5"
    assert r.args["a"] == "1" and r.args.getlist("a") == ["1", "x"] and r.args.get("n", type=int) == 5
    assert r.args.get("missing", "d") == "d" and r.args.get("a", type=int) == 1
    assert r.headers.get("x-num", type=int) == 7 and r.headers["CONTENT-TYPE"].startswith("application/json")
    assert ("X-Num", "7") in list(r.headers) and r.headers.get("absent") is None
    assert r.data == BODY and r.get_data() == BODY and r.get_data(as_text=True) == BODY.decode()
    assert r.is_json and r.json == {"k": [1, 2]} and r.get_json() == {"k": [1, 2]}
    assert r.environ["REMOTE_ADDR"] == "10.0.0.1" and r.content_type.startswith("application/json")


def test_stand_in_json_rules():
    assert stand_in(headers=[("Content-Type", "application/vnd.x+json")]).is_json
    text = stand_in(headers=[("Content-Type", "text/plain")])
    assert not text.is_json and text.get_json(silent=True) is None
    with pytest.raises(ValueError):
        text.json  # noqa: B018 - request.json on a non-JSON request raises, as Flask's does
    assert text.get_json(force=True) == {"k": [1, 2]}
    with pytest.raises(ValueError):
        stand_in(body=b"{").get_json()


def test_stand_in_form():
    r = stand_in(headers=[("Content-Type", "application/x-www-form-urlencoded")], body=b"x=1&x=2&y=")
    assert r.form.getlist("x") == ["1", "2"] and r.form["y"] == ""
    assert r.get_data() == b"x=1&x=2&y="  # the raw body stays readable, as with rawhttp in the reference
    assert r.values.getlist("x") == ["1", "2"]


def test_with_flask_the_request_is_a_flask_request():
    flask = pytest.importorskip("flask")
    r = make_request("POST", "/score?a=1&a=x", HEADERS, BODY, "10.0.0.1", 5001, "HTTP/1.1")
    assert isinstance(r, flask.Request)
    assert r.args.getlist("a") == ["1", "x"] and r.get_json() == json.loads(BODY) and r.full_path == "/score?a=1&a=x"
