#!/usr/bin/env bash
# Sets up the reference server (azureml-inference-server-http 1.0.0, whose HTTP behaviour is that of
# 1.5.1) and the real inference-schema 1.7.2 in a venv, from Debian 12's packages only, so that the
# differential harness (tests/differential/) can run it beside ours. Nothing here is part of the build.
#
#   bash tests/differential/setup_reference.sh [DIR]
#
# DIR (default /tmp/azmlinfsrv-reference) receives:
#   src/server   the reference's tree at 1.0.0      src/schema   inference-schema at 1.7.2
#   src/tests    the reference's own tests/azmlinfsrv at its HEAD (1.5.1)
#   stubs/       no-op stand-ins for opencensus (App Insights telemetry, off unless enabled; not packaged
#                in Debian) and for the stdlib module `parser` that 1.0.0's copy of the tests imports
#   venv/        the interpreter; venv/bin/azmlinfsrv serves as `azmlinfsrv` does in production
#
# The two repositories come from REFERENCE_REPO and SCHEMA_REPO (a clone or a bare git directory) when
# set, else they are cloned from GitHub.
set -euo pipefail
dir=${1:-/tmp/azmlinfsrv-reference}
server_commit=eae9ab1   # "Increment version": 1.0.0
server_head=4a7ea9b     # 1.5.1: its HTTP-facing modules are byte-identical to 1.0.0's
schema_commit=ca5f01c   # inference-schema 1.7.2

packages=(python3-venv python3-flask python3-gunicorn python3-pydantic python3-flask-cors python3-distutils
          python3-dateutil python3-tz python3-wrapt python3-numpy python3-pandas python3-pytest
          python3-requests python3-psutil git curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p "$dir/src"
git_dir() {  # $1 = env value or empty, $2 = GitHub name, $3 = local clone name
  if [ -n "$1" ]; then
    if [ -d "$1/.git" ]; then echo "$1/.git"; else echo "$1"; fi
  else
    [ -d "$dir/src/$3.git" ] || git clone -q --bare "https://github.com/$2" "$dir/src/$3.git"
    echo "$dir/src/$3.git"
  fi
}
server_git=$(git_dir "${REFERENCE_REPO:-}" microsoft/azureml-inference-server server)
schema_git=$(git_dir "${SCHEMA_REPO:-}" Azure/InferenceSchema schema)
for pair in "server:$server_git:$server_commit" "schema:$schema_git:$schema_commit"; do
  IFS=: read -r name git commit <<< "$pair"
  rm -rf "${dir:?}/src/$name" && mkdir -p "$dir/src/$name"
  git --git-dir="$git" archive "$commit" | tar -x -C "$dir/src/$name"
done
rm -rf "$dir/src/tests" && mkdir -p "$dir/src/tests"
git --git-dir="$server_git" archive "$server_head" tests/azmlinfsrv | tar -x -C "$dir/src/tests"

stubs="$dir/stubs"
rm -rf "$stubs" && mkdir -p "$stubs/opencensus/ext/azure" "$stubs/opencensus/trace"
touch "$stubs/opencensus/__init__.py" "$stubs/opencensus/ext/__init__.py" "$stubs/opencensus/ext/azure/__init__.py" \
      "$stubs/parser.py"
cat > "$stubs/opencensus/ext/azure/log_exporter.py" <<'EOF'
import logging


class AzureLogHandler(logging.Handler):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def emit(self, record):
        pass
EOF
cat > "$stubs/opencensus/ext/azure/trace_exporter.py" <<'EOF'
class AzureExporter:
    def __init__(self, *args, **kwargs):
        pass
EOF
cat > "$stubs/opencensus/trace/__init__.py" <<'EOF'
EOF
cat > "$stubs/opencensus/trace/samplers.py" <<'EOF'
class AlwaysOnSampler:
    pass
EOF
cat > "$stubs/opencensus/trace/span.py" <<'EOF'
class SpanKind:
    UNSPECIFIED = 0
    SERVER = 1
    CLIENT = 2
EOF
cat > "$stubs/opencensus/trace/blank_span.py" <<'EOF'
class BlankSpan:
    def __init__(self, *args, **kwargs):
        self.attributes = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
EOF
cat > "$stubs/opencensus/trace/tracer.py" <<'EOF'
from .blank_span import BlankSpan


class Tracer:
    def __init__(self, *args, **kwargs):
        pass

    def span(self, name=None):
        return BlankSpan()
EOF

[ -x "$dir/venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$dir/venv"
site=$("$dir/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$dir/src/server" "$dir/src/schema" "$stubs" > "$site/azmlinfsrv_reference.pth"
cat > "$dir/venv/bin/azmlinfsrv" <<EOF
#!$dir/venv/bin/python
import sys
from azureml_inference_server_http.amlserver import run
sys.exit(run())
EOF
chmod +x "$dir/venv/bin/azmlinfsrv"
"$dir/venv/bin/python" -c 'import azureml_inference_server_http as a, inference_schema, flask, gunicorn; print("reference", a.__version__, "flask", flask.__version__, "gunicorn", gunicorn.__version__)'
echo "reference ready: $dir/venv/bin/azmlinfsrv; inference-schema: $dir/src/schema"
