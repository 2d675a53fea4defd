"""docs/behaviour.md 1.4, 2.2, 4.1 beyond the numbered checklist: configuration errors, debug/diagnostic
environment variables, sys.path and driver modules."""
import re

from bb_http import request

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
ECHO = "def init():\n    pass\n\n\ndef run(data):\n    return data\n"


def test_config_validation_error_exits_3(server):
    s = server.start("echo_input.py", env={"SCORING_TIMEOUT_MS": "abc"}, expect_ready=False)
    rc = s.wait_exit(5)
    assert rc == 3, f"exit code {rc}\n{s.logs()}"
    out = s.stdout()
    assert re.search(rf"^{TS} C \[\d+\] azmlinfsrv[\w.]* - $", out, re.M), s.logs()
    block = ("===============Configuration Error=================\n"
             "SCORING_TIMEOUT_MS: Input should be a valid integer, unable to parse string as an integer "
             "(environment variable: SCORING_TIMEOUT_MS)\n" + "=" * 51)
    assert block in out, s.logs()


def test_scoring_timeout_setting_logged(server):
    s = server.start("echo_input.py", env={"SCORING_TIMEOUT_MS": "1234"})
    s.wait_for_log(rf"^{TS} I \[\d+\] azmlinfsrv - Scoring timeout is set to 1234$")


def test_debuggability_env_warning(server):
    s = server.start("echo_input.py", env={"AML_DBG_MODEL_INFO": "1"})
    s.wait_for_log(r" W \[\d+\] azmlinfsrv[\w.]* - The debuggability features have been removed\. If you have a use "
                   r"case for them please reach out to us\.$")


def test_debug_port_without_debugpy(server):
    s = server.start("echo_input.py", env={"AZUREML_DEBUG_PORT": "5678"}, expect_ready=False)
    try:
        import debugpy  # noqa: F401 (only whether it is installed)
        has_debugpy = True
    except ImportError:
        has_debugpy = False
    s.wait_for_log(r"!! Starting the inference server in DEBUGGING mode because AZUREML_DEBUG_PORT is set\.",
                   stream="both")
    s.wait_for_log(r"!! This environment variable should not be set in a production environment\.", stream="both")
    if not has_debugpy:
        s.wait_for_log(r"\*\* Cannot connect to a debugger because debugpy is not installed\.", stream="both")
        assert "ready for serving traffic" not in s.stdout(), s.logs()


def test_source_directory_on_sys_path(server, tmp_path):
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "helper_mod_src.py").write_text("VALUE = 'from-src'\n")
    (root / "helper_mod_root.py").write_text("VALUE = 'from-root'\n")
    script = tmp_path / "elsewhere" / "score.py"
    script.parent.mkdir()
    script.write_text("import helper_mod_src, helper_mod_root\n\ndef init():\n    pass\n\n"
                      "def run(data):\n    return [helper_mod_src.VALUE, helper_mod_root.VALUE]\n")
    s = server.start(str(script), cwd=str(root), env={"AZUREML_SOURCE_DIRECTORY": "src"})
    assert request(s.port, "POST", "/score", body=b"x").json() == ["from-src", "from-root"]


def test_script_folder_not_on_sys_path(server, tmp_path):
    # quirk 11: a sibling import fails unless the folder is AML_APP_ROOT; the log hints at the fix
    app = tmp_path / "app"
    app.mkdir()
    (app / "sibling_mod_xyz.py").write_text("VALUE = 1\n")
    (app / "score.py").write_text("import sibling_mod_xyz\n\n" + ECHO)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    s = server.start(str(app / "score.py"), cwd=str(cwd), expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    out = s.stdout()
    assert "ModuleNotFoundError: No module named 'sibling_mod_xyz'" in out, s.logs()
    assert "AML_APP_ROOT" in out or "AZUREML_SOURCE_DIRECTORY" in out, "docs/differences.md: a hint in the log\n" + s.logs()
    # started from the script's folder, it works
    s2 = server.start(str(app / "score.py"), cwd=str(app))
    assert request(s2.port, "POST", "/score", body=b"ok").json() == "ok"


def test_module_name_entry_module(server):
    s = server.start("import sys\n\ndef init():\n    pass\n\n"
                     "def run(data):\n    return [__name__, __name__ in sys.modules, __file__]\n")
    j = request(s.port, "POST", "/score", body=b"x").json()
    assert j[0] == "entry_module" and j[1] is False and j[2] == s.script, j


def test_driver_module(server, tmp_path):
    # Designer-style scripts: module attribute driver_module with a run(); the outer init() is still called
    (tmp_path / "driver_impl.py").write_text("def run(data):\n    return {'driver': data}\n")
    script = tmp_path / "score.py"
    script.write_text("import driver_impl as driver_module\n\nINITS = []\n\n"
                      "def init():\n    print('outer init called')\n\n"
                      "def run(data):\n    return {'outer': data}\n")
    s = server.start(str(script), cwd=str(tmp_path))
    s.wait_for_log(r"azmlinfsrv\.print - outer init called$")
    assert request(s.port, "POST", "/score", body=b"d").json() == {"driver": "d"}
    # The entry script is the driver script; the module it names holds the score script (the reference's line).
    s.wait_for_log(r"azmlinfsrv\.user_script - Found driver script at " + re.escape(str(script))
                   + " and the score script at " + re.escape(str(tmp_path / "driver_impl.py")) + "$")


def test_driver_module_entry_script_needs_its_own_run(server, tmp_path):
    # The reference checks init() and run() on the entry module before it looks at driver_module.
    (tmp_path / "driver_impl.py").write_text("def run(data):\n    return {'driver': data}\n")
    script = tmp_path / "score.py"
    script.write_text("import driver_impl as driver_module\n\ndef init():\n    pass\n")
    s = server.start(str(script), cwd=str(tmp_path), expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    assert f"User script at {script} does not have a run() function defined." in s.stdout(), s.logs()
    assert "Found driver script" not in s.stdout(), s.logs()


def test_import_main_without_entry_script(server, tmp_path):
    # with AZUREML_ENTRY_SCRIPT unset (config file without it) the server imports main from sys.path;
    # when there is none it exits 3 and says what it looked for
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    s = server.start(None, cwd=str(tmp_path), args=["--config_file", str(cfg)], expect_ready=False)
    assert s.wait_exit(5) == 3, s.logs()
    assert "No score script found. Expected score script main.py." in s.stdout(), s.logs()


def test_user_logging_json(server, tmp_path):
    # docs/behaviour.md 1.6 / docs/differences.md: a logging.json in AML_APP_ROOT applies to the Python-side loggers
    (tmp_path / "logging.json").write_text("""{
  "version": 1,
  "formatters": {"alt": {"format": "[%(levelname)s] [%(process)d] %(name)s %(asctime)s | %(message)s"}},
  "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "alt", "stream": "ext://sys.stdout"}},
  "loggers": {"azmlinfsrv": {"level": "INFO", "handlers": ["out"], "propagate": false}}
}""")
    s = server.start("print_in_init.py", cwd=str(tmp_path))
    s.wait_for_log(r"^\[INFO\] \[\d+\] azmlinfsrv\.print \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \| Initializing$")
    s.wait_for_log(rf"Loaded logging config from {re.escape(str(tmp_path / 'logging.json'))}$")
