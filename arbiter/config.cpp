// Flags into the environment (docs/behaviour.md 1.3), the checks the launcher prints, and the banner (1.7).
#include <limits.h>
#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <regex>

#include <fmt/format.h>

#include "arbiter.h"

#ifndef AZMLINFSRV_VERSION
#define AZMLINFSRV_VERSION "0"
#endif

namespace arbiter {

namespace {

std::optional<std::string> env(const char* name) {
  const char* v = getenv(name);
  if (!v) return std::nullopt;
  return std::string(v);
}

void set_env(const char* name, const std::string& value) { setenv(name, value.c_str(), 1); }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// os.path.realpath: resolves what exists, keeps the rest, never fails.
std::string real_path(const std::string& path, const std::string& cwd) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(path).is_absolute() ? fs::path(path) : fs::path(cwd) / path;
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(p, ec);
  return ec ? p.lexically_normal().string() : resolved.string();
}

bool is_uuid(const std::string& s) {
  static const std::regex uuid("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$");
  return std::regex_match(s, uuid);
}

std::string or_none(const std::optional<std::string>& v) { return v ? *v : "None"; }

}  // namespace

Launch apply_flags_to_environment(const Flags& flags, const std::string& cwd) {
  Launch launch;
  if (!env("AML_APP_ROOT")) set_env("AML_APP_ROOT", cwd);
  const auto& entry_script = flags.text_of(Opt::entry_script);
  if (entry_script) set_env("AZUREML_ENTRY_SCRIPT", real_path(*entry_script, cwd));
  set_env("TRANSPORT_PROTOCOL", flags.is_on(Opt::rest) ? "rest" : "grpc");
  if (const auto& model_dir = flags.text_of(Opt::model_dir)) set_env("AZUREML_MODEL_DIR", *model_dir);

  // A bad environment value stops the start here, once, rather than in every worker.
  launch.worker_count = static_cast<int>(resolve(flags, Opt::worker_count, launch.error));
  set_env("WORKER_COUNT", std::to_string(launch.worker_count));
  // Transport settings: a flag is exported too, so the scoring script sees what the workers use.
  auto transport = [&](Opt id, uint64_t& into) {
    into = static_cast<uint64_t>(resolve(flags, id, launch.error));
    if (flags.number_of(id)) set_env(option(id).env, std::to_string(into));
  };
  worker::Settings& w = launch.worker;
  transport(Opt::limit_request_line, w.limit_request_line);
  transport(Opt::limit_request_field_size, w.limit_request_field_size);
  transport(Opt::limit_request_fields, w.limit_request_fields);
  transport(Opt::limit_request_body, w.limit_request_body);
  transport(Opt::request_head_timeout_ms, w.request_head_timeout_ms);
  transport(Opt::request_body_timeout_ms, w.request_body_timeout_ms);
  transport(Opt::keep_alive_timeout_ms, w.keep_alive_timeout_ms);
  if (!launch.error.empty()) return launch;

  auto version_flag = env("SERVER_VERSION_LOG_RESPONSE_ENABLED");
  if (!version_flag || lower(*version_flag) == "true")
    set_env("HTTP_X_MS_SERVER_VERSION", fmt::format("azmlinfsrv/{}", AZMLINFSRV_VERSION));

  // A pre-set SERVER_PORT or HEALTH_PORT is ignored on purpose (docs/behaviour.md 8.6).
  launch.port = static_cast<int>(resolve(flags, Opt::port, launch.error));
  set_env("SERVER_PORT", std::to_string(launch.port));
  launch.separate_health = env("SEPERATE_HEALTH_ENDPOINT") == std::optional<std::string>("true");
  launch.health_port = launch.separate_health ? static_cast<int>(resolve(flags, Opt::health_port, launch.error)) : launch.port;
  set_env("HEALTH_PORT", std::to_string(launch.health_port));

  if (const auto& key = flags.text_of(Opt::appinsights_instrumentation_key)) {
    set_env("AML_APP_INSIGHTS_ENABLED", "true");
    set_env("AML_APP_INSIGHTS_KEY", *key);
  }
  if (const auto& origins = flags.text_of(Opt::access_control_allow_origins)) set_env("AML_CORS_ORIGINS", *origins);
  if (const auto& config_file = flags.text_of(Opt::config_file))
    set_env("AZUREML_CONFIG_FILE", real_path(*config_file, cwd));

  if (!env("AZUREML_MODEL_DIR")) {
    launch.notices.push_back("The environment variable 'AZUREML_MODEL_DIR' has not been set.");
    launch.notices.push_back("Use the --model_dir command line argument to set it.");
  }
  auto key = env("AML_APP_INSIGHTS_KEY");
  bool enabled = env("AML_APP_INSIGHTS_ENABLED") == std::optional<std::string>("true");
  if (enabled && key && is_uuid(*key)) {
    launch.notices.push_back("Valid Application Insights instrumentation key provided.");
  } else {
    if (enabled && key) {
      launch.notices.push_back("Invalid Application Insights instrumentation key provided.");
      launch.notices.push_back("Application Insights has been disabled.");
    }
    set_env("AML_APP_INSIGHTS_ENABLED", "false");
  }
  return launch;
}

std::string banner(const Launch& launch) {
  auto cors = env("AML_CORS_ORIGINS");
  return fmt::format(
      "\n"
      "Azure ML Inferencing HTTP server v{version}\n"
      "\n\n"
      "Server Settings\n"
      "---------------\n"
      "Entry Script Name: {entry}\n"
      "Model Directory: {model}\n"
      "Config File: {config}\n"
      "Worker Count: {workers}\n"
      "Worker Timeout (seconds): {timeout}\n"
      "Server Port: {port}\n"
      "Health Port: {health}\n"
      "Application Insights Enabled: {ai_enabled}\n"
      "Application Insights Key: {ai_key}\n"
      "Inferencing HTTP server version: {server_version}\n"
      "CORS for the specified origins: {cors}\n"
      "Create dedicated endpoint for health: {separate}\n"
      "{dev}"
      "\n\n"
      "Server Routes\n"
      "---------------\n"
      "Liveness Probe: GET   127.0.0.1:{health}/\n"
      "Score:          POST  127.0.0.1:{port}/score\n"
      "\n",
      fmt::arg("version", AZMLINFSRV_VERSION), fmt::arg("entry", or_none(env("AZUREML_ENTRY_SCRIPT"))),
      fmt::arg("model", or_none(env("AZUREML_MODEL_DIR"))), fmt::arg("config", or_none(env("AZUREML_CONFIG_FILE"))),
      fmt::arg("workers", launch.worker_count), fmt::arg("timeout", or_none(env("WORKER_TIMEOUT"))),
      fmt::arg("port", launch.port), fmt::arg("health", launch.health_port),
      fmt::arg("ai_enabled", or_none(env("AML_APP_INSIGHTS_ENABLED"))),
      fmt::arg("ai_key", env("AML_APP_INSIGHTS_KEY") ? "AppInsights key provided" : "None"),
      fmt::arg("server_version", or_none(env("HTTP_X_MS_SERVER_VERSION"))),
      fmt::arg("cors", cors ? "Enabling CORS for " + *cors : "None"),
      fmt::arg("separate", or_none(env("SEPERATE_HEALTH_ENDPOINT"))),
      fmt::arg("dev", launch.dev ? "Developer Mode (--dev): on. Listening on 127.0.0.1 only; reloads on each saved "
                                   "edit; a failure's exception and stack are in its answer. Not for production.\n"
                                 : ""));
}

}  // namespace arbiter
