"""The examples/ folders, served by the real binary (each README.md says how to run it)."""
import os
import struct
import subprocess
import sys
import time
import zlib

import pytest

from bb_http import Conn, request
from conftest import REPO

EXAMPLES = os.path.join(REPO, "examples")


def example(*parts):
    path = os.path.join(EXAMPLES, *parts)
    assert os.path.isfile(path), f"{path} is missing"
    return path


def test_example_readmes():
    for name in ("sklearn", "binary", "streaming"):
        text = open(example(name, "README.md")).read()
        assert "azmlinfsrv --entry_script score.py" in text, name


def test_example_sklearn(server, tmp_path):
    pytest.importorskip("sklearn", reason="python3-sklearn is not installed")
    model_dir = tmp_path / "model"
    subprocess.run([sys.executable, example("sklearn", "train.py"), str(model_dir)], check=True,
                   capture_output=True, timeout=120)
    assert (model_dir / "model.joblib").is_file()
    s = server.start(example("sklearn", "score.py"), cwd=os.path.join(EXAMPLES, "sklearn"),
                     args=["--model_dir", str(model_dir)], ready_timeout=30)
    s.wait_for_log(r"azmlinfsrv\.print - Loaded model from .*model\.joblib$")
    body = '{"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]}'
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body=body)
    assert r.status == 200, r
    assert r.body == b'{"predictions": [0, 2, 1], "labels": ["setosa", "virginica", "versicolor"]}'
    # the README's example request
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"},
                body='{"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}')
    assert r.body == b'{"predictions": [0, 2], "labels": ["setosa", "virginica"]}', r
    readme = open(example("sklearn", "README.md")).read()
    assert r.body.decode() in readme
    # bad input: run() raises -> the scoring-script 500
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/json"}, body='{"data": [[1, 2]]}')
    assert r.status == 500 and r.one("x-ms-run-function-failed") == "True", r


def parse_png(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        payload = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF, kind
        chunks[kind] = payload
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


def test_example_binary(server):
    s = server.start(example("binary", "score.py"), cwd=os.path.join(EXAMPLES, "binary"))
    r = request(s.port, "GET", "/score?size=16")
    assert r.status == 200, r
    assert r.all("content-type") == ["image/png"], r
    assert r.one("content-length") == str(len(r.body))
    w, h, rows = parse_png(r.body)
    assert (w, h) == (16, 16)
    assert len(rows) == 16 * 17
    assert rows[0:2] == b"\x00\x00" and rows[-1] == 255  # filter byte, first pixel black; last pixel white
    # exact bytes: the same as the script's own png() builds
    import importlib.util
    spec = importlib.util.spec_from_file_location("binary_example", example("binary", "score.py"))
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        assert r.body == mod.png(16)
    except ImportError:  # azureml.contrib is only importable inside the server
        pass
    payload = bytes(range(256)) * 4
    r = request(s.port, "POST", "/score", headers={"Content-Type": "application/octet-stream"}, body=payload)
    assert r.status == 200, r
    assert r.all("content-type") == ["application/octet-stream"], r
    assert r.body == payload[::-1]
    r = request(s.port, "GET", "/score?size=0")
    assert r.status == 400 and r.json() == {"error": "size must be between 1 and 1024"}, r


def test_example_streaming(server):
    s = server.start(example("streaming", "score.py"), cwd=os.path.join(EXAMPLES, "streaming"))
    with Conn(s.port) as c:
        t0 = time.monotonic()
        c.send_raw(Conn.build("GET", "/score?n=4&delay=0.3"))
        deadline = t0 + 10
        while b"\r\n\r\n" not in c.buf:
            c._fill(deadline)
        head, c.buf = c.buf.split(b"\r\n\r\n", 1)
        assert b"Transfer-Encoding: chunked" in head, head
        arrivals, chunks = [], []
        while True:
            size = int(c._readline(deadline), 16)
            if size == 0:
                assert c._readline(deadline) == b""
                break
            chunks.append(c._readn(size, deadline))
            arrivals.append(time.monotonic() - t0)
            assert c._readn(2, deadline) == b"\r\n"
    assert chunks == [f"line {i} of 4\n".encode() for i in range(1, 5)]
    assert arrivals[0] < 0.5 and arrivals[-1] >= 0.8, arrivals
    r = request(s.port, "POST", "/score", headers={"Content-Type": "text/plain"}, body=b"one two three")
    assert r.status == 200, r
    assert r.chunks == [b"one\n", b"two\n", b"three\n"], r
    s.wait_for_log(r"azmlinfsrv - POST /score 200 \d+\.\d{3}ms N/A$")
