"""Checklist items 57, 58: CORS (docs/behaviour.md 3.8; the reference uses flask-cors with origins from
AML_CORS_ORIGINS / --access_control_allow_origins split on "," and stripped, methods GET, POST). The expected
values below are what the reference answered to the same requests."""
import pytest

from bb_http import request

ORIGINS = "www.microsoft.com, www.bing.com"
ACAO = "Access-Control-Allow-Origin"


@pytest.fixture(scope="session")
def cors_server(session_servers):
    return session_servers.start("echo_input.py", env={"AML_CORS_ORIGINS": ORIGINS})


@pytest.fixture(scope="session")
def cors_star_server(session_servers):
    return session_servers.start("echo_input.py", args=["--access_control_allow_origins", "*"])


def vary_origin(r):
    return any(v.strip().lower() == "origin" for val in r.all("Vary") for v in val.split(","))


def test_c57_cors_allowed_origin(cors_server):
    r = request(cors_server.port, "OPTIONS", "/score", headers={"Origin": "www.microsoft.com"})
    assert r.status == 200, r
    assert r.body == b""
    assert r.all(ACAO) == ["www.microsoft.com"], r
    assert vary_origin(r), r


def test_c57_cors_other_origin(cors_server):
    r = request(cors_server.port, "OPTIONS", "/score", headers={"Origin": "www.azure.com"})
    assert r.status == 200, r
    assert not r.has(ACAO), r
    assert not r.has("Access-Control-Allow-Methods"), r
    r = request(cors_server.port, "POST", "/score", headers={"Origin": "www.azure.com"}, body=b"x")
    assert r.status == 200 and not r.has(ACAO), r


@pytest.mark.parametrize("method,path", [("GET", "/"), ("POST", "/score"), ("GET", "/score"),
                                         ("GET", "/swagger.json"), ("HEAD", "/")])
def test_c57_cors_on_every_view(cors_server, method, path):
    r = request(cors_server.port, method, path, headers={"Origin": "www.bing.com"},
                body=b"x" if method == "POST" else None)
    assert r.status == 200, r
    assert r.all(ACAO) == ["www.bing.com"], r
    assert vary_origin(r), r
    assert r.one("x-ms-server-version") and r.one("x-request-id")  # still family A


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("DELETE", "/")])
def test_c57_no_cors_on_routing_errors(cors_server, method, path):
    r = request(cors_server.port, method, path, headers={"Origin": "www.microsoft.com"})
    assert r.status in (404, 405), r
    assert not r.has(ACAO), r


def test_c57_cors_banner_and_log(cors_server):
    lines = cors_server.stdout().splitlines()
    assert f"CORS for the specified origins: Enabling CORS for {ORIGINS}" in lines, cors_server.logs()
    cors_server.wait_for_log(rf"azmlinfsrv[\w.]* - Enabling CORS for the following origins: {ORIGINS}$")


def test_c58_cors_preflight(cors_server):
    r = request(cors_server.port, "OPTIONS", "/score",
                headers={"Origin": "www.microsoft.com", "Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "content-type, x-custom"})
    assert r.status == 200, r
    assert r.body == b""
    assert r.all(ACAO) == ["www.microsoft.com"], r
    assert ", ".join(r.all("Access-Control-Allow-Methods")) == "GET, POST", r
    assert ", ".join(r.all("Access-Control-Allow-Headers")).lower() == "content-type, x-custom", r


def test_c58_cors_preflight_disallowed_origin(cors_server):
    r = request(cors_server.port, "OPTIONS", "/score",
                headers={"Origin": "www.azure.com", "Access-Control-Request-Method": "POST"})
    assert r.status == 200, r
    assert not r.has(ACAO) and not r.has("Access-Control-Allow-Methods"), r


def test_c58_cors_star_no_origin(cors_star_server):
    r = request(cors_star_server.port, "GET", "/score")
    assert r.status == 200, r
    assert r.all(ACAO) == ["*"], r
    assert not vary_origin(r), r
    assert "CORS for the specified origins: Enabling CORS for *" in cors_star_server.stdout().splitlines()


def test_c58_cors_star_with_origin(cors_star_server):
    # flask-cors without send_wildcard echoes the request's origin
    r = request(cors_star_server.port, "POST", "/score", headers={"Origin": "http://any.example"}, body=b"x")
    assert r.status == 200, r
    assert r.all(ACAO) == ["http://any.example"], r


def test_c58_cors_list_no_origin(cors_server):
    # docs/behaviour.md 3.8: with a list and no Origin header, the first non-regex origin after sorting
    r = request(cors_server.port, "GET", "/")
    assert r.status == 200, r
    assert r.all(ACAO) == ["www.bing.com"], r
    assert vary_origin(r), r


def test_cors_off_by_default(echo_server):
    r = request(echo_server.port, "OPTIONS", "/score",
                headers={"Origin": "www.microsoft.com", "Access-Control-Request-Method": "POST"})
    assert r.status == 200, r
    assert not r.has(ACAO) and not r.has("Access-Control-Allow-Methods"), r


PREFLIGHT = {"Origin": "www.microsoft.com", "Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize("asked, allowed", [
    ("content-type,authorization", "authorization, content-type"),
    ("Content-Type, authorization,X-Foo , content-type,,", ", , Content-Type, X-Foo, authorization, content-type"),
    ("x-b,\tx-a", "x-a, x-b"),
])
def test_c58_preflight_allow_headers_sorted(cors_server, asked, allowed):
    # flask-cors: the names split on ",", stripped, sorted (upper case first), joined by ", "; neither
    # lower-cased nor de-duplicated.
    r = request(cors_server.port, "OPTIONS", "/score", headers=dict(PREFLIGHT, **{"Access-Control-Request-Headers": asked}))
    assert r.status == 200, r
    assert r.all("Access-Control-Allow-Headers") == [allowed], r


def test_c58_preflight_allow_headers_of_repeated_lines(cors_server):
    # Repeated request lines reach flask-cors joined by "," (gunicorn's environ).
    headers = list(PREFLIGHT.items()) + [("Access-Control-Request-Headers", "x-b"),
                                         ("Access-Control-Request-Headers", "x-a")]
    r = request(cors_server.port, "OPTIONS", "/swagger.json", headers=headers)
    assert r.all("Access-Control-Allow-Headers") == ["x-a, x-b"], r
    names = [name for name, _ in r.headers]
    assert names.index(ACAO) < names.index("Access-Control-Allow-Headers") < names.index(
        "Access-Control-Allow-Methods") < names.index("Vary") < names.index("x-ms-server-version"), r


@pytest.mark.parametrize("method, preflight", [("POST", True), ("get", True), ("T, P", True), ("DELETE", False),
                                               ("PUT", False)])
def test_c58_preflight_method_rule(cors_server, method, preflight):
    # flask-cors tests the upper-cased method with `in` against the string "GET, POST".
    r = request(cors_server.port, "OPTIONS", "/score",
                headers={"Origin": "www.microsoft.com", "Access-Control-Request-Method": method,
                         "Access-Control-Request-Headers": "x-a"})
    assert r.all(ACAO) == ["www.microsoft.com"], r
    assert r.has("Access-Control-Allow-Methods") == preflight, r
    assert r.has("Access-Control-Allow-Headers") == preflight, r


def test_c57_one_origin_no_vary(server):
    # flask-cors adds Vary: Origin only when the answer can vary: several origins, or a pattern.
    s = server.start("echo_input.py", env={"AML_CORS_ORIGINS": "www.microsoft.com"})
    for headers in ({"Origin": "www.microsoft.com"}, {}):
        r = request(s.port, "GET", "/", headers=headers)
        assert r.all(ACAO) == ["www.microsoft.com"], r
        assert not r.has("Vary"), r


def test_c57_own_allow_origin_left_alone(server):
    # flask-cors leaves a response that already has a non-empty Access-Control-Allow-Origin alone.
    s = server.start("raw_own_cors.py", env={"AML_CORS_ORIGINS": ORIGINS})
    r = request(s.port, "GET", "/score?own=mine", headers={"Origin": "www.bing.com"})
    assert r.all(ACAO) == ["mine"] and not r.has("Vary"), r
    r = request(s.port, "GET", "/score?own=", headers={"Origin": "www.bing.com"})
    assert r.all(ACAO) == ["", "www.bing.com"] and r.all("Vary") == ["Origin"], r
    r = request(s.port, "GET", "/score", headers={"Origin": "www.bing.com"})
    assert r.all(ACAO) == ["www.bing.com"] and r.all("Vary") == ["Origin"], r
