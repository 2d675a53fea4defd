// worker/settings.h: the worker's configuration, read once after boot.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "../../worker/settings.h"

TEST_CASE("the worker's configuration: the arbiter's settings, the server version, the CORS origins given") {
  worker::Options options;
  options.settings.limit_request_line = 4094;
  options.settings.keep_alive_timeout_ms = 60000;
  options.settings.worker_timeout_s = 300;
  setenv("HTTP_X_MS_SERVER_VERSION", "azmlinfsrv/9", 1);
  worker::Config config = worker::read_config(options, std::nullopt);
  CHECK(config.settings.limit_request_line == 4094);
  CHECK(config.settings.worker_timeout_s == 300);
  CHECK(config.server_version == "azmlinfsrv/9");
  CHECK_FALSE(config.cors_origins.has_value());

  unsetenv("HTTP_X_MS_SERVER_VERSION");
  worker::store_config(worker::read_config(options, "https://a.example,https://b.example"));
  CHECK(worker::config().server_version.empty());
  CHECK(*worker::config().cors_origins == "https://a.example,https://b.example");
  CHECK(worker::config().settings.limit_request_line == 4094);
  CHECK(worker::config().settings.keep_alive_timeout_ms == 60000);
  worker::store_config(worker::Config{});
}
