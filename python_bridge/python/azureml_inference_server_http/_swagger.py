"""The swagger documents (docs/behaviour.md 5), built once per worker after init(): the user's files,
else the templates with the service's name, version and path prefix, and the schemas of a decorated
run()."""

import os

from ._config import _env
from ._lazy_logging import get_logger
from ._requests import json_dumps

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

_SWAGGER_VERSIONS = ("2", "3", "3.1")
_VERSION_ALIASES = {"2": ("2", "2.0"), "3": ("3", "3.0"), "3.1": ("3.1",)}  # the reference's, per document
_USER_SWAGGER_FILES = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.1.json",)}
_UNDECORATED_SCHEMA = {"type": "object", "example": {}}


# The undecorated documents as json.dumps writes them, placeholders kept: a worker serves them without
# importing json (and re). undecorated_swagger_text() makes them; tests/python checks the files agree.
_UNDECORATED_SWAGGER_FILES = {"2": "swagger2_undecorated.json", "3": "swagger3_undecorated.json",
                              "3.1": "swagger3.1_undecorated.json"}


def _swagger_substitutions():
    prefix = _env("SERVICE_PATH_PREFIX", "")
    return (("$SERVICE_NAME$", _env("SERVICE_NAME", "ML service")),
            ("$SERVICE_VERSION$", _env("SERVICE_VERSION", "1.0")),
            ("$PATH_PREFIX$", "/" + prefix.strip("/") if prefix else ""))


def _substitute(text, substitutions):
    for placeholder, value in substitutions:
        text = text.replace(placeholder, value)
    return text


def _swagger_from_template(version, input_schema, output_schema, substitutions):
    import json

    template_name = "swagger2_template.json" if version == "2" else "swagger3_template.json"
    with open(os.path.join(_PACKAGE_DIR, "swagger", template_name), encoding="utf-8") as f:
        document = json.loads(_substitute(f.read(), substitutions))
    schemas = document["definitions"] if version == "2" else document["components"]["schemas"]
    schemas["ServiceInput"] = input_schema
    schemas["ServiceOutput"] = output_schema
    if version == "3.1":
        document["openapi"] = "3.1.0"
    return document


def undecorated_swagger_text(version):
    """The content of the version's swagger*_undecorated.json."""
    return json_dumps(_swagger_from_template(version, _UNDECORATED_SCHEMA, _UNDECORATED_SCHEMA, ()))


def _needs_no_escaping(value):
    # json.dumps writes these characters as they are, and json.loads reads them back as they are.
    return all(" " <= c <= "~" and c not in '"\\' for c in value)


def _user_swagger(app_root, version, swagger_logger):
    """The user's document for a version, as the reference reads it: each of the version's files in turn,
    logged when read; the first that is not empty or false (json.load's value) is the one."""
    for name in _USER_SWAGGER_FILES[version]:
        path = os.path.join(app_root, name)
        if not os.path.isfile(path):
            continue
        import json

        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        swagger_logger.info("Loaded user's swagger file for version [%s] from %s", version, path)
        if document:
            return document
    return None


def build_swaggers(app_root, input_schema=None, output_schema=None, versions=_SWAGGER_VERSIONS):
    """The swagger documents served, as bytes, built once at boot: for each version the user's file, else
    a document generated from the template when the version is in ``versions`` (those run()'s schemas
    support, docs/behaviour.md 5.2)."""
    swagger_logger = get_logger("azmlinfsrv.swagger")  # made here, after init(), as the reference makes it
    swaggers = {}
    substitutions = _swagger_substitutions()
    plain = all(_needs_no_escaping(value) for _, value in substitutions)
    for version in _SWAGGER_VERSIONS:
        user_document = _user_swagger(app_root, version, swagger_logger)
        if user_document is not None:
            text = json_dumps(user_document)
        elif version not in versions:
            continue
        elif not input_schema and not output_schema and plain:
            # What json.dumps(json.loads(...)) of the substituted template gives, text for text.
            path = os.path.join(_PACKAGE_DIR, "swagger", _UNDECORATED_SWAGGER_FILES[version])
            with open(path, encoding="utf-8") as f:
                text = _substitute(f.read(), substitutions)
        else:
            text = json_dumps(_swagger_from_template(version, input_schema or _UNDECORATED_SCHEMA,
                                                     output_schema or _UNDECORATED_SCHEMA, substitutions))
        swaggers[version] = text.encode("utf-8")
    skipped = [v for v in _SWAGGER_VERSIONS if v not in swaggers]
    if not swaggers:
        swagger_logger.info("No swagger is prepared.")
    elif skipped:
        swagger_logger.info("Swaggers are prepared for versions [%s] and skipped for versions [%s].",
                            ", ".join(swaggers), ", ".join(skipped))
    else:
        swagger_logger.info("Swaggers are prepared for the following versions: [%s].", ", ".join(swaggers))
    return swaggers


# ---- the rare paths of a request ------------------------------------------------------------------
