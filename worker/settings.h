// The worker's configuration, typed and read once, after Python's boot: what the arbiter resolved and
// handed over (worker::Settings: limits, timeouts, WORKER_TIMEOUT), HTTP_X_MS_SERVER_VERSION from the
// environment (the script may set it), and the CORS origins the boot found (the environment or
// config.json, whose values stay out of os.environ: bridge::cors_origins()).
// The worker knows no default: the arbiter's options table (arbiter/options.cpp) holds them all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "worker.h"

namespace worker {

struct Config {
  Settings settings;
  std::string server_version;               // HTTP_X_MS_SERVER_VERSION; empty: no x-ms-server-version header
  std::optional<std::string> cors_origins;  // AML_CORS_ORIGINS as given; absent: CORS off
  std::string load_failure;  // the script failed to load (bridge::load_failure()); empty: it loaded
};

// Reads the configuration; call it once, after bridge::boot().
Config read_config(const Options& options, std::optional<std::string> cors_origins);

// The configuration read_config() returned in this process, once worker::run() has stored it.
const Config& config();
void store_config(Config config);

}  // namespace worker
