// The worker's configuration (see settings.h).
#include "settings.h"

#include <cstdlib>
#include <string_view>

namespace worker {

namespace {

Config* stored = nullptr;

}  // namespace

Config read_config(const Options& options) {
  Config config;
  config.settings = options.settings;
  if (const char* v = getenv("HTTP_X_MS_SERVER_VERSION")) config.server_version = v;
  if (const char* v = getenv("AML_CORS_ORIGINS")) config.cors_origins = v;
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

uint64_t tunable_value(const char* env) {
  const Settings& s = config().settings;
  std::string_view name = env;
  if (name == "LIMIT_REQUEST_LINE") return s.limit_request_line;
  if (name == "LIMIT_REQUEST_FIELD_SIZE") return s.limit_request_field_size;
  if (name == "LIMIT_REQUEST_FIELDS") return s.limit_request_fields;
  if (name == "LIMIT_REQUEST_BODY") return s.limit_request_body;
  if (name == "REQUEST_HEAD_TIMEOUT_MS") return s.request_head_timeout_ms;
  if (name == "REQUEST_BODY_TIMEOUT_MS") return s.request_body_timeout_ms;
  if (name == "KEEP_ALIVE_TIMEOUT_MS") return s.keep_alive_timeout_ms;
  return 0;
}

}  // namespace worker
