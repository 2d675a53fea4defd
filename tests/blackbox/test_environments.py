"""Python environments (issue 6): the active virtual environment, --python, and version mismatches."""
import os
import subprocess

from bb_http import request
from conftest import run_cli

SCRIPT = "import marker_mod\n\ndef init():\n    pass\n\ndef run(data):\n    return marker_mod.VALUE\n"


def make_venv(path, marker_value=42):
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(path)], check=True)
    site = path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "marker_mod.py").write_text(f"VALUE = {marker_value}\n")
    return path


def test_active_virtual_environment_packages_are_importable(server, tmp_path):
    venv = make_venv(tmp_path / "venv")
    s = server.start(SCRIPT, env={"VIRTUAL_ENV": str(venv)})
    assert request(s.port, "POST", "/score", body="x").json() == 42


def test_python_flag_names_the_environment(server, tmp_path):
    venv = make_venv(tmp_path / "venv", marker_value=7)
    s = server.start(SCRIPT, args=["--python", str(venv / "bin" / "python")])
    assert request(s.port, "POST", "/score", body="x").json() == 7


def test_without_the_environment_the_import_fails_as_usual(server, tmp_path):
    s = server.start(SCRIPT, expect_ready=False)
    assert s.wait_exit(10) == 3
    out = s.stdout()
    assert "ModuleNotFoundError: No module named 'marker_mod'" in out
    assert 'line 1, in <module>' in out


def test_an_environment_of_another_python_version_is_refused_clearly(tmp_path):
    venv = make_venv(tmp_path / "venv")
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace("version = 3.11", "version = 3.12"))
    script = tmp_path / "score.py"
    script.write_text(SCRIPT)
    port = __import__("conftest").free_port()
    code, out, err, elapsed = run_cli(["--entry_script", str(script), "--port", str(port)],
                                      env={"VIRTUAL_ENV": str(venv)}, timeout=15)
    assert code == 3
    assert "is Python 3.12" in out and "embeds Python 3.11" in out and "VIRTUAL_ENV" in out


def test_version_flag():
    code, out, err, _ = run_cli(["--version"])
    assert code == 0
    version = open(os.path.join(os.path.dirname(__file__), "..", "..", "python_bridge", "python",
                                "azureml_inference_server_http", "VERSION")).read().strip()
    assert out.strip() == f"azmlinfsrv {version}"
