// The worker's configuration (see settings.h).
#include "settings.h"

#include <cstdlib>

namespace worker {

namespace {

Config* stored = nullptr;

}  // namespace

Config read_config(const Options& options, std::optional<std::string> cors_origins) {
  Config config;
  config.settings = options.settings;
  if (const char* v = getenv("HTTP_X_MS_SERVER_VERSION")) config.server_version = v;
  config.cors_origins = std::move(cors_origins);
  return config;
}

void store_config(Config config) {
  delete stored;
  stored = new Config(std::move(config));
}

const Config& config() {
  static const Config empty;
  return stored ? *stored : empty;
}

}  // namespace worker
