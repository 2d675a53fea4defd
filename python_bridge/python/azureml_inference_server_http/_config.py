"""The worker's settings (docs/behaviour.md 1.4, 1.5): the environment, read as the reference's settings
object reads it, and config.json, applied under it; the CRITICAL "Configuration Error" of a bad value."""

import os

from ._lazy_logging import get_logger

logger = get_logger("azmlinfsrv")

_DEFAULT_APP_ROOT = "/var/azureml-app"
_DEFAULT_SCORING_TIMEOUT_MS = 3600000


class BootFailure(Exception):
    """A boot error whose message is the whole story (no traceback of ours needed)."""


class UserScriptError(BootFailure):
    """A script the reference refuses with its UserScriptError (no init() or run(), a run() it cannot call):
    logged with the final line of the reference's traceback (_failure.py)."""


# The settings config.json gives (ConfigFile.apply): the server's, read through _env() under the
# environment, never put into os.environ, since the reference's settings object does not put them there
# and a script reading os.environ must see what it would see in Azure ML.
_FILE_SETTINGS = {}


def _env(name, default=None):
    # The reference's settings object matches env names case-insensitively (docs/behaviour.md 1.4).
    if name in os.environ:
        return os.environ[name]
    lowered = name.lower()
    for key, value in os.environ.items():
        if key.lower() == lowered:
            return value
    return _FILE_SETTINGS.get(name, default)


def _configuration_error(lines):
    bar = "=" * 51
    logger.critical("\n===============Configuration Error=================\n%s\n%s", "\n".join(lines), bar)


# The settings a config.json may carry (docs/behaviour.md 1.5): the reference's pydantic aliases, plus the AML_*
# keys its documentation promises (honoured here, docs/differences.md).
_CONFIG_KEYS = (
    "AZUREML_SOURCE_DIRECTORY", "AZUREML_ENTRY_SCRIPT", "SERVICE_NAME", "WORKSPACE_NAME", "SERVICE_PATH_PREFIX",
    "SERVICE_VERSION", "SCORING_TIMEOUT_MS", "AZUREML_LOG_LEVEL", "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
    "AZUREML_MODEL_DIR", "HOSTNAME", "AZUREML_DEBUG_PORT",
    "AML_APP_ROOT", "AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY", "AML_MODEL_DC_STORAGE_ENABLED",
    "AML_CORS_ORIGINS",
)
_CONFIG_KEY_ALIASES = {"AML_MODEL_DC_STORAGE_ENABLED": "AML_MDC_STORAGE_ENABLED"}
_BOOL_SETTINGS = ("APP_INSIGHTS_LOG_RESPONSE_ENABLED", "AML_APP_INSIGHTS_ENABLED", "AML_MDC_STORAGE_ENABLED")
_INT_SETTINGS = ("SCORING_TIMEOUT_MS", "AZUREML_DEBUG_PORT")
_BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"}


class ConfigFile:
    """The config.json found by discovery, applied under the environment (env wins over the file)."""

    def __init__(self):
        self.path = None
        self.error = None  # the exception that made the file unreadable
        self.extra_keys = []
        self.from_file = set()

    def apply(self, app_root, entry_script):
        candidates = [_env("AZUREML_CONFIG_FILE"), os.path.join(app_root, "config.json")]
        if entry_script:
            candidates.append(os.path.join(os.path.dirname(entry_script), "config.json"))
        for candidate in candidates:
            if candidate and os.path.isfile(candidate) and os.path.getsize(candidate) > 0:
                self.path = candidate
                break
        if self.path is None:
            return
        import json

        try:
            with open(self.path, encoding="utf-8") as f:
                values = json.load(f)
            if not isinstance(values, dict):
                raise ValueError("the file must hold a JSON object, not %s" % type(values).__name__)
        except (OSError, ValueError) as error:
            self.error = error
            return
        for key, value in values.items():
            if key not in _CONFIG_KEYS:
                self.extra_keys.append(key)
                continue
            name = _CONFIG_KEY_ALIASES.get(key, key)
            if _env(name) is None and value is not None:
                _FILE_SETTINGS[name] = value if isinstance(value, str) else json.dumps(value)
                self.from_file.add(name)


def _validate_settings(config):
    """Type checks of the reference's settings object; each failure is one line of the CRITICAL block."""
    problems = []

    def source(name):
        return "config file: %s" % config.path if name in config.from_file else "environment variable: %s" % name

    for name in _INT_SETTINGS:
        raw = _env(name)
        if raw is not None:
            try:
                int(raw.strip())
            except ValueError:
                problems.append("%s: Input should be a valid integer, unable to parse string as an integer (%s)"
                                % (name, source(name)))
    for name in _BOOL_SETTINGS:
        raw = _env(name)
        if raw is not None and raw.strip().lower() not in _BOOL_WORDS:
            problems.append("%s: Input should be a valid boolean, unable to interpret input (%s)" % (name, source(name)))
    if problems:
        raise BootFailure("\n".join(problems))


def _read_scoring_timeout():
    raw = _env("SCORING_TIMEOUT_MS")
    return _DEFAULT_SCORING_TIMEOUT_MS if raw is None else int(raw.strip())


def _entry_script(app_root):
    """AZUREML_ENTRY_SCRIPT, resolved against AML_APP_ROOT when relative (docs/behaviour.md 1.5); None for main.py."""
    entry_script = _env("AZUREML_ENTRY_SCRIPT")
    if entry_script and not os.path.isabs(entry_script):
        entry_script = os.path.join(app_root, entry_script)
    return entry_script or None
