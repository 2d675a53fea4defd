#!/bin/sh
# Container entrypoint: starts azmlinfsrv as the container's main process (exec, so it is PID 1 and
# receives the orchestrator's SIGTERM directly; the arbiter handles TERM gracefully and reaps orphans).
#
# With arguments, they are azmlinfsrv's own (e.g. `--entry_script /app/score.py --port 8080`).
# Without, the Azure ML layout is used: AML_APP_ROOT (default /var/azureml-app) holds score.py,
# AZUREML_MODEL_DIR the model, PORT (default 5001) the scoring port.
set -eu
AZMLINFSRV="${AZMLINFSRV:-azmlinfsrv}"
if [ "$#" -gt 0 ]; then
  exec "$AZMLINFSRV" "$@"
fi
app_root="${AML_APP_ROOT:-/var/azureml-app}"
export AML_APP_ROOT="$app_root"
entry="${AZUREML_ENTRY_SCRIPT:-$app_root/score.py}"
if [ ! -f "$entry" ]; then
  echo "entrypoint: no scoring script at $entry. Mount or copy it there, set AZUREML_ENTRY_SCRIPT, or pass --entry_script." >&2
  exit 2
fi
cd "$app_root"
set -- --entry_script "$entry" --port "${PORT:-5001}"
if [ -n "${AZUREML_MODEL_DIR:-}" ]; then
  set -- "$@" --model_dir "$AZUREML_MODEL_DIR"
fi
if [ -n "${METRICS_PORT:-}" ]; then
  set -- "$@" --metrics_port "$METRICS_PORT"
fi
exec "$AZMLINFSRV" "$@"
