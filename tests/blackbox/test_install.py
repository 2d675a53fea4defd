"""The server works after `meson install`, not only from the build tree (issue 2, item 2)."""
import importlib.util
import marshal
import os
import shutil
import subprocess

import pytest

from bb_http import request
from conftest import REPO, binary_path


def test_spine_installed_tree_serves_quickstart(server, tmp_path):
    build_dir = os.path.dirname(binary_path())
    if not os.path.isfile(os.path.join(build_dir, "build.ninja")):
        pytest.fail(f"{build_dir} is not a meson build directory; set AZMLINFSRV to <build>/azmlinfsrv", pytrace=False)
    destdir = tmp_path / "root"
    subprocess.run(["meson", "install", "-C", build_dir, "--destdir", str(destdir), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    installed = [os.path.join(d, f) for d, _, files in os.walk(destdir) for f in files if f == "azmlinfsrv"]
    assert len(installed) == 1, installed
    package = [d for d, dirs, _ in os.walk(destdir) if d.endswith("azureml_inference_server_http")]
    assert package, "the Python package was not installed"
    man = [os.path.join(d, f) for d, _, files in os.walk(destdir) for f in files if f == "azmlinfsrv.1"]
    assert len(man) == 1 and os.sep + os.path.join("man", "man1") + os.sep in man[0], man
    page = open(man[0]).read()
    assert "--entry_script" in page.replace("\\-", "-") and "azmlinfsrv" in page

    # Bytecode for every module, naming where the files will be (not the staging folder): without it a
    # worker compiles the package at every start when PYTHONDONTWRITEBYTECODE is set.
    sources = [os.path.join(d, f) for d, _, files in os.walk(package[0]) for f in files if f.endswith(".py")]
    assert len(sources) >= 8, sources
    for source in sources:
        cached = importlib.util.cache_from_source(source)
        assert os.path.isfile(cached), f"no bytecode installed for {source}"
        with open(cached, "rb") as f:
            code = marshal.loads(f.read()[16:])
        assert code.co_filename == source.replace(str(destdir), ""), (code.co_filename, source)

    # Move the installed tree: the binary must find its package relative to itself, not in the source tree.
    moved = tmp_path / "moved"
    shutil.move(str(destdir), str(moved))
    binary = installed[0].replace(str(destdir), str(moved))
    s = server.start(os.path.join(REPO, "examples", "quickstart", "score.py"), binary=binary)
    r = request(s.port, "GET", "/score")
    assert r.status == 200 and r.json() == {"message": "Hello, World!"}
    first_line = s.stdout().splitlines()[0]
    assert "Loaded logging config from " + str(moved) in first_line


def test_build_compiles_the_package_bytecode():
    # The build tree's binary runs the source tree's package: the build leaves its bytecode, up to date.
    package = os.path.join(REPO, "python_bridge", "python", "azureml_inference_server_http")
    for d, _, files in os.walk(package):
        for f in files:
            if f.endswith(".py"):
                source = os.path.join(d, f)
                cached = importlib.util.cache_from_source(source)
                assert os.path.isfile(cached), f"no bytecode for {source}: was the build run?"
                with open(cached, "rb") as c:
                    header = c.read(16)
                mtime = int.from_bytes(header[8:12], "little")
                assert mtime == int(os.stat(source).st_mtime) & 0xFFFFFFFF, f"stale bytecode for {source}"


def test_binary_exports_only_the_python_c_api():
    # With libpython linked in (-Dpython_link=static, the default), the executable exports the C API for
    # extension modules, and nothing of its own: an extension that bundles llhttp (aiohttp) must keep
    # calling its own copy, not ours.
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    out = subprocess.run([nm, "-D", "--defined-only", binary_path()], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()]
    # llhttp and libuv's names, and C++ names in the rooms' namespaces (a sanitizer build also exports its
    # runtime's, which are not ours)
    rooms = ("http", "worker", "bridge", "arbiter", "logline")
    own = ("llhttp", "uv_") + tuple(f"_ZN{len(r)}{r}" for r in rooms) + tuple(f"_ZNK{len(r)}{r}" for r in rooms)
    leaked = [n for n in names if n.startswith(own)]
    assert leaked == [], leaked
    linked = subprocess.run(["ldd", binary_path()], capture_output=True, text=True).stdout
    if "libpython" in linked:  # -Dpython_link=shared: the C API comes from libpython itself
        assert not [n for n in names if n.startswith("Py")], names
    else:  # what every extension module calls must be there
        assert {"PyLong_FromLong", "PyExc_TypeError", "_Py_NoneStruct", "PyModule_Create2"} <= set(names)
