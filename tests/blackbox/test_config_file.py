"""Checklist item 77 and docs/behaviour.md 1.5: config.json (--config_file / AZUREML_CONFIG_FILE / discovery),
with docs/differences.md: AML_* keys honoured, the "extra keys" warning only for real unknown keys."""
import json
import os
import shutil

from bb_http import request
from conftest import FIXTURES

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def copy_fixture(name, dest_dir, as_name=None):
    dest = os.path.join(str(dest_dir), as_name or name)
    shutil.copy(os.path.join(FIXTURES, name), dest)
    return dest


def test_c77_config_file_entry_script(server, tmp_path):
    copy_fixture("env_dump.py", tmp_path, "score.py")
    cfg = write_json(tmp_path / "cfg.json", {"AZUREML_ENTRY_SCRIPT": "score.py"})
    s = server.start(None, cwd=str(tmp_path), args=["--config_file", "cfg.json"])
    s.wait_for_log(rf"^{TS} I \[\d+\] azmlinfsrv\.user_script - Users's init has completed successfully$")
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j["AZUREML_CONFIG_FILE"] == os.path.realpath(cfg), j
    assert "No such file" not in s.stdout()
    assert f"Config File: {os.path.realpath(cfg)}" in s.stdout().splitlines() or \
        "Config File: cfg.json" in s.stdout().splitlines(), s.logs()


def test_c77_config_file_without_entry_script_imports_main(server, tmp_path):
    # no entry script anywhere: `import main` from sys.path (AML_APP_ROOT = CWD is on it)
    copy_fixture("echo_input.py", tmp_path, "main.py")
    write_json(tmp_path / "cfg.json", {"SERVICE_NAME": "from-config"})
    s = server.start(None, cwd=str(tmp_path), args=["--config_file", "cfg.json"])
    r = request(s.port, "POST", "/score", body=b"hi")
    assert r.status == 200 and r.json() == {"received": "hi", "type": "str"}, r
    doc = json.loads(request(s.port, "GET", "/swagger.json").body)
    assert doc["info"]["title"] == "from-config"


def test_c77_config_json_discovered_in_app_root(server, tmp_path):
    # $AML_APP_ROOT/config.json (AML_APP_ROOT defaults to the CWD) is read without any flag
    write_json(tmp_path / "config.json", {"SERVICE_NAME": "svc-file", "SERVICE_VERSION": "4.5",
                                          "SCORING_TIMEOUT_MS": 300})
    s = server.start("responses.py", cwd=str(tmp_path))
    doc = json.loads(request(s.port, "GET", "/swagger.json").body)
    assert doc["info"]["title"] == "svc-file" and doc["info"]["version"] == "4.5", doc["info"]
    r = request(s.port, "POST", "/score", body=b"sleep:2")
    assert r.status == 500 and r.json() == {"message": "Scoring timeout after 300 ms"}, r
    s.wait_for_log(r"Scoring timeout is set to 300$")


def test_c77_config_json_next_to_entry_script(server, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    script = copy_fixture("echo_input.py", app, "score.py")
    write_json(app / "config.json", {"SERVICE_NAME": "beside-script"})
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    s = server.start(script, cwd=str(cwd))
    doc = json.loads(request(s.port, "GET", "/swagger.json").body)
    assert doc["info"]["title"] == "beside-script"


def test_c77_env_beats_file_and_aml_keys_honoured(server, tmp_path):
    # priority: env > file. docs/differences.md: the documented AML_* keys are honoured from config.json (the
    # reference ignores them), and the "Found extra keys" warning (printed at every start by the reference)
    # only appears for really unknown keys.
    cfg = write_json(tmp_path / "cfg.json", {"SERVICE_NAME": "file-name", "SERVICE_VERSION": "7.7",
                                             "AML_CORS_ORIGINS": "http://a.example"})
    s = server.start("echo_input.py", args=["--config_file", cfg], env={"SERVICE_NAME": "env-name"})
    doc = json.loads(request(s.port, "GET", "/swagger.json").body)
    assert doc["info"]["title"] == "env-name" and doc["info"]["version"] == "7.7", doc["info"]
    r = request(s.port, "GET", "/score", headers={"Origin": "http://a.example"})
    assert r.status == 200, r
    assert r.all("Access-Control-Allow-Origin") == ["http://a.example"], r
    s.wait_for_log(r"Worker with pid \d+ ready for serving traffic")
    assert "Found extra keys in the config file" not in s.output(), s.logs()


def test_c77_explicit_config_file_beats_discovery(server, tmp_path):
    write_json(tmp_path / "config.json", {"SERVICE_NAME": "discovered"})
    cfg = write_json(tmp_path / "explicit.json", {"SERVICE_NAME": "explicit"})
    s = server.start("echo_input.py", cwd=str(tmp_path), env={"AZUREML_CONFIG_FILE": cfg})
    doc = json.loads(request(s.port, "GET", "/swagger.json").body)
    assert doc["info"]["title"] == "explicit"


def test_c77_extra_keys_warning(server, tmp_path):
    cfg = write_json(tmp_path / "cfg2.json", {"SERVICE_NAME": "x", "NOT_A_SETTING": 1})
    s = server.start("echo_input.py", args=["--config_file", cfg])
    s.wait_for_log(r" W \[\d+\] azmlinfsrv[\w.]* - Found extra keys in the config file that are not supported by "
                   r"the server\.")
    assert "NOT_A_SETTING" in s.stdout(), s.logs()


def test_c77_malformed_config_file(server, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"SERVICE_NAME": ')
    s = server.start("echo_input.py", args=["--config_file", str(cfg)], expect_ready=False)
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    assert "Invalid config file!" in s.stdout(), s.logs()
