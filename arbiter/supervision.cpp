// The supervision settings: how long a run() may take before its worker is replaced, how long a
// graceful stop waits, when a worker is replaced for age, and whether the script's folder is watched.
// Kept apart from config.cpp, which follows the reference's launcher line by line; these are ours.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "arbiter.h"

namespace arbiter {

void apply_supervision_settings(const Flags& flags, Launch& launch) {
  std::string error;
  auto value = [&](Opt id) { return static_cast<int>(resolve(flags, id, error)); };
  launch.worker_timeout_s = value(Opt::worker_timeout);
  launch.worker.worker_timeout_s = static_cast<uint64_t>(launch.worker_timeout_s);
  launch.graceful_timeout_s = value(Opt::graceful_timeout);
  launch.max_requests = value(Opt::max_requests);
  launch.max_requests_jitter = value(Opt::max_requests_jitter);
  launch.dev = flags.is_on(Opt::dev);
  launch.reload = flags.is_on(Opt::reload) || launch.dev;
  launch.worker.dev = launch.dev;
  launch.worker.serve_load_failure = launch.reload;
  launch.metrics_port = value(Opt::metrics_port);
  if (launch.metrics_port && error.empty()) {
    bool health = launch.separate_health && launch.health_port == launch.metrics_port;
    if (launch.metrics_port == launch.port || health)
      error = fmt::format("The metrics port {} is also the {} port. Give --metrics_port (or AZMLINFSRV_METRICS_PORT) "
                          "a port of its own.",
                          launch.metrics_port, health ? "health" : "scoring");
  }

  namespace fs = std::filesystem;
  // --capture DIR (else AZMLINFSRV_CAPTURE_DIR): made absolute and created here, once, so that a folder the
  // workers could not write to stops the start rather than every failed request's capture.
  const char* capture_env = getenv("AZMLINFSRV_CAPTURE_DIR");
  std::string capture = flags.text_of(Opt::capture).value_or(capture_env ? capture_env : "");
  if (!capture.empty() && error.empty()) {
    std::error_code ec;
    fs::path dir = fs::absolute(capture, ec);
    if (!ec) fs::create_directories(dir, ec);
    if (ec || access(dir.c_str(), W_OK | X_OK) != 0)
      error = fmt::format("--capture {}: cannot create or write to the folder {}: {}. Give a folder you can write to "
                          "(it is created if missing).",
                          capture, dir.string(), ec ? ec.message() : strerror(errno));
    else
      launch.worker.capture_dir = dir.lexically_normal().string();
  }

  const char* script = getenv("AZUREML_ENTRY_SCRIPT");
  const char* app_root = getenv("AML_APP_ROOT");
  if (script && *script) launch.watch_dir = fs::path(script).parent_path().string();
  else if (app_root) launch.watch_dir = app_root;
  if (!error.empty() && launch.error.empty()) launch.error = error;
}

}  // namespace arbiter
