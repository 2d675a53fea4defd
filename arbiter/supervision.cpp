// The supervision settings: how long a run() may take before its worker is replaced, how long a
// graceful stop waits, when a worker is replaced for age, and whether the script's folder is watched.
// Kept apart from config.cpp, which follows the reference's launcher line by line; these are ours.
#include <stdlib.h>

#include <filesystem>

#include <fmt/format.h>

#include "arbiter.h"

namespace arbiter {

namespace {

// A whole number from low to high in the environment variable name; nullopt with error set otherwise.
std::optional<int> env_int(const char* name, long low, long high, const char* what, std::string& error) {
  const char* raw = getenv(name);
  if (!raw) return std::nullopt;
  std::string text = raw;
  size_t used = 0;
  long value = -1;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < low || value > high) {
    error = fmt::format("The environment variable {}='{}' is not valid: {}. Set it to a whole number from {} to {}.",
                        name, text, what, low, high);
    return std::nullopt;
  }
  return static_cast<int>(value);
}

}  // namespace

void apply_supervision_settings(const Flags& flags, Launch& launch) {
  std::string error;
  // gunicorn's --timeout: seconds, 0 turns the watch off. The default is applied but not exported,
  // so the banner keeps showing None (CONTRACT.md 1.4).
  if (auto v = env_int("WORKER_TIMEOUT", 0, 86400 * 365, "it is the worker timeout in seconds (0: none)", error))
    launch.worker_timeout_s = *v;
  if (flags.graceful_timeout) launch.graceful_timeout_s = *flags.graceful_timeout;
  else if (auto v = env_int("GRACEFUL_TIMEOUT", 0, 86400, "it is the graceful stop timeout in seconds", error))
    launch.graceful_timeout_s = *v;
  if (flags.max_requests) launch.max_requests = *flags.max_requests;
  else if (auto v = env_int("MAX_REQUESTS", 0, INT32_MAX, "it is the number of requests after which a worker is "
                            "replaced (0: never)", error))
    launch.max_requests = *v;
  if (flags.max_requests_jitter) launch.max_requests_jitter = *flags.max_requests_jitter;
  else if (auto v = env_int("MAX_REQUESTS_JITTER", 0, INT32_MAX, "it is the random extra added to MAX_REQUESTS",
                            error))
    launch.max_requests_jitter = *v;
  launch.reload = flags.reload;
  if (flags.metrics_port) launch.metrics_port = *flags.metrics_port;
  else if (auto v = env_int("AZMLINFSRV_METRICS_PORT", 1, 65535, "it is the port of the metrics listener", error))
    launch.metrics_port = *v;
  if (launch.metrics_port && error.empty()) {
    bool health = launch.separate_health && launch.health_port == launch.metrics_port;
    if (launch.metrics_port == launch.port || health)
      error = fmt::format("The metrics port {} is also the {} port. Give --metrics_port (or AZMLINFSRV_METRICS_PORT) "
                          "a port of its own.",
                          launch.metrics_port, health ? "health" : "scoring");
  }

  namespace fs = std::filesystem;
  const char* script = getenv("AZUREML_ENTRY_SCRIPT");
  const char* app_root = getenv("AML_APP_ROOT");
  if (script && *script) launch.watch_dir = fs::path(script).parent_path().string();
  else if (app_root) launch.watch_dir = app_root;
  if (!error.empty() && launch.error.empty()) launch.error = error;
}

}  // namespace arbiter
