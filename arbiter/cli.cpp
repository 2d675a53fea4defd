// The command line, parsed with CLI11 and reported the way the reference's argparse reports it, since
// scripts and CI gates read those streams and exit codes (CONTRACT.md 1.2).
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "../worker/settings.h"
#include "arbiter.h"

#ifndef AZMLINFSRV_VERSION
#define AZMLINFSRV_VERSION "0"
#endif

namespace arbiter {

namespace {

constexpr const char* kUsage =
    "usage: azmlinfsrv [-h] [--entry_script ENTRY_SCRIPT] [--model_dir MODEL_DIR]\n"
    "                  [--appinsights_instrumentation_key APPINSIGHTS_INSTRUMENTATION_KEY]\n"
    "                  [--port PORT] [--health_port HEALTH_PORT]\n"
    "                  [--worker_count WORKER_COUNT]\n"
    "                  [--access_control_allow_origins ACCESS_CONTROL_ALLOW_ORIGINS]\n"
    "                  [--config_file CONFIG_FILE] [--python PYTHON]\n"
    "                  [--graceful_timeout SECONDS] [--max_requests N]\n"
    "                  [--max_requests_jitter N] [--reload]\n"
    "                  [--log_format {text,json}] [--metrics_port PORT]\n";

// Our transport flags, after argparse's own lines (help and usage list them as argparse would).
std::string tunables_usage() {
  std::string out;
  for (const worker::Tunable& t : worker::tunables()) out += fmt::format("                  [{} N]\n", t.flag);
  return out;
}

std::string tunables_help() {
  std::string out;
  for (const worker::Tunable& t : worker::tunables())
    out += fmt::format("  {} N\n                        {} Default {} (env {}).\n", t.flag, t.help,
                       t.default_value, t.env);
  return out;
}

std::string description() { return fmt::format("Azure ML Inferencing HTTP server v{}", AZMLINFSRV_VERSION); }

std::string options_text() {
  return fmt::format(
      "{}\n\n"
      "options:\n"
      "  -h, --help            show this help message and exit\n"
      "  --version             show the server's version and exit\n"
      "  --entry_script ENTRY_SCRIPT\n"
      "                        The relative or absolute path to the scoring script.\n"
      "  --model_dir MODEL_DIR\n"
      "                        The relative or absolute path to the directory holding\n"
      "                        the model used for inferencing.\n"
      "  --appinsights_instrumentation_key APPINSIGHTS_INSTRUMENTATION_KEY\n"
      "                        The instrumentation key of the Application Insights\n"
      "                        resource where the logs will be published.\n"
      "  --port PORT           The serving port of the server. Default is 5001.\n"
      "  --health_port HEALTH_PORT\n"
      "                        The health port of the server, used when\n"
      "                        SEPERATE_HEALTH_ENDPOINT=true. Default is 5000.\n"
      "  --worker_count WORKER_COUNT\n"
      "                        The number of worker processes that will serve\n"
      "                        concurrent requests. Default is 1.\n"
      "  --access_control_allow_origins ACCESS_CONTROL_ALLOW_ORIGINS\n"
      "                        Enable CORS for the specified origins. Separate\n"
      "                        multiple origins with \",\".\n"
      "  --config_file CONFIG_FILE\n"
      "                        The path to the configuration file (config.json).\n"
      "  --python PYTHON       The Python interpreter (of a virtual environment, say)\n"
      "                        whose packages the scoring script imports. Default:\n"
      "                        $VIRTUAL_ENV/bin/python when a virtual environment is\n"
      "                        active, else the Python azmlinfsrv was built with.\n"
      "  --graceful_timeout SECONDS\n"
      "                        On SIGTERM, how long requests in flight may take to\n"
      "                        finish before workers are killed. Default is 30.\n"
      "  --max_requests N      Replace a worker, without downtime, after it served N\n"
      "                        requests. Default is 0 (never).\n"
      "  --max_requests_jitter N\n"
      "                        Add a random 0..N to --max_requests per worker, so\n"
      "                        workers are not all replaced at once. Default is 0.\n"
      "  --reload              Watch the entry script's folder and reload the workers\n"
      "                        (as SIGHUP does) when a file in it changes.\n"
      "  --log_format {{text,json}}\n"
      "                        text: the reference's log lines (default); json: one\n"
      "                        JSON object per line, with the request id, for log\n"
      "                        shippers. Env: AZMLINFSRV_LOG_FORMAT.\n"
      "  --metrics_port PORT   Serve GET /metrics (Prometheus) and GET /ready\n"
      "                        (readiness) on this port. Default: off. Env:\n"
      "                        AZMLINFSRV_METRICS_PORT.\n{}",
      description(), tunables_help());
}

CommandLine fail(std::string message) {
  CommandLine result;
  result.outcome = CommandLine::Outcome::exit;
  result.exit_code = 1;
  result.err = fmt::format("{}{}azmlinfsrv: error: {}\n", kUsage, tunables_usage(), message);
  result.out = "\n" + options_text();
  return result;
}

// argparse type checks: an int, then the validator's range. The reference names its validators
// validate_port and validate_worker_count in the message; we keep that and add the valid range.
std::optional<std::string> parse_int(const std::string& flag, const std::string& validator, const std::string& text,
                                     long low, long high, std::optional<int>& into) {
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < low || value > high) {
    std::string range = high == INT32_MAX ? fmt::format("an integer of at least {}", low)
                                          : fmt::format("an integer from {} to {}", low, high);
    return fmt::format("argument {}: invalid {} value: '{}' (expected {})", flag, validator, text, range);
  }
  into = static_cast<int>(value);
  return std::nullopt;
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--version") {
      CommandLine version;
      version.outcome = CommandLine::Outcome::exit;
      version.exit_code = 0;
      version.out = fmt::format("azmlinfsrv {}\n", AZMLINFSRV_VERSION);
      return version;
    }
    if (a == "-h" || a == "--help") {
      CommandLine help;
      help.outcome = CommandLine::Outcome::exit;
      help.exit_code = 0;
      help.out = std::string(kUsage) + tunables_usage() + "\n" + options_text();
      return help;
    }
  }

  CLI::App app{description(), "azmlinfsrv"};
  app.set_help_flag();
  app.allow_extras(false);
  Flags flags;
  std::string entry_script, model_dir, key, port, health_port, worker_count, origins, config_file, python;
  std::string graceful_timeout, max_requests, max_requests_jitter, log_format, metrics_port;
  auto* o_entry = app.add_option("--entry_script", entry_script);
  auto* o_model = app.add_option("--model_dir", model_dir);
  auto* o_key = app.add_option("--appinsights_instrumentation_key", key);
  auto* o_port = app.add_option("--port", port);
  auto* o_health = app.add_option("--health_port", health_port);
  auto* o_workers = app.add_option("--worker_count", worker_count);
  auto* o_origins = app.add_option("--access_control_allow_origins", origins);
  auto* o_config = app.add_option("--config_file", config_file);
  auto* o_python = app.add_option("--python", python);
  app.add_flag("--rest", flags.rest);
  auto* o_graceful = app.add_option("--graceful_timeout", graceful_timeout);
  auto* o_max_requests = app.add_option("--max_requests", max_requests);
  auto* o_jitter = app.add_option("--max_requests_jitter", max_requests_jitter);
  app.add_flag("--reload", flags.reload);
  auto* o_log_format = app.add_option("--log_format", log_format);
  auto* o_metrics = app.add_option("--metrics_port", metrics_port);
  std::vector<std::string> tunable_text(worker::tunables().size());
  std::vector<CLI::Option*> tunable_options;
  for (size_t i = 0; i < tunable_text.size(); ++i) {
    tunable_options.push_back(app.add_option(worker::tunables()[i].flag, tunable_text[i]));
    tunable_options.back()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  for (auto* o : {o_entry, o_model, o_key, o_port, o_health, o_workers, o_origins, o_config, o_python, o_graceful,
                  o_max_requests, o_jitter, o_log_format, o_metrics})
    o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ExtrasError& e) {
    std::string extras;
    for (int i = 1; i < argc; ++i) {
      std::string_view a = argv[i];
      bool known = false;
      std::vector<std::string_view> names = {"--entry_script", "--model_dir", "--appinsights_instrumentation_key",
                                             "--port", "--health_port", "--worker_count",
                                             "--access_control_allow_origins", "--config_file", "--python",
                                             "--graceful_timeout", "--max_requests", "--max_requests_jitter",
                                             "--log_format", "--metrics_port"};
      for (const worker::Tunable& t : worker::tunables()) names.push_back(t.flag);
      for (std::string_view n : names) {
        if (a == n || (a.size() > n.size() && a.substr(0, n.size()) == n && a[n.size()] == '=')) {
          known = true;
          if (a == n) ++i;  // skip its value
        }
      }
      if (!known && a != "--rest" && a != "--reload") extras += (extras.empty() ? "" : " ") + std::string(a);
    }
    return fail("unrecognized arguments: " + (extras.empty() ? std::string(e.what()) : extras));
  } catch (const CLI::ParseError& e) {
    return fail(e.what());
  }

  if (o_entry->count()) flags.entry_script = entry_script;
  if (o_model->count()) flags.model_dir = model_dir;
  if (o_key->count()) flags.appinsights_instrumentation_key = key;
  if (o_origins->count()) flags.access_control_allow_origins = origins;
  if (o_config->count()) flags.config_file = config_file;
  if (o_python->count()) flags.python = python;
  if (o_log_format->count()) {
    if (log_format != "text" && log_format != "json")
      return fail(fmt::format("argument --log_format: invalid choice: '{}' (choose from 'text', 'json')", log_format));
    flags.log_format = log_format;
  }
  if (o_port->count())
    if (auto error = parse_int("--port", "validate_port", port, 1, 65535, flags.port)) return fail(*error);
  if (o_health->count())
    if (auto error = parse_int("--health_port", "validate_port", health_port, 1, 65535, flags.health_port))
      return fail(*error);
  if (o_workers->count())
    if (auto error = parse_int("--worker_count", "validate_worker_count", worker_count, 1, INT32_MAX,
                               flags.worker_count))
      return fail(*error);
  if (o_metrics->count())
    if (auto error = parse_int("--metrics_port", "validate_port", metrics_port, 1, 65535, flags.metrics_port))
      return fail(*error);
  if (o_graceful->count())
    if (auto error = parse_int("--graceful_timeout", "int", graceful_timeout, 0, 86400, flags.graceful_timeout))
      return fail(*error);
  if (o_max_requests->count())
    if (auto error = parse_int("--max_requests", "int", max_requests, 0, INT32_MAX, flags.max_requests))
      return fail(*error);
  if (o_jitter->count())
    if (auto error = parse_int("--max_requests_jitter", "int", max_requests_jitter, 0, INT32_MAX,
                               flags.max_requests_jitter))
      return fail(*error);

  for (size_t i = 0; i < tunable_options.size(); ++i) {
    if (!tunable_options[i]->count()) continue;
    const worker::Tunable& t = worker::tunables()[i];
    std::optional<uint64_t> value = worker::parse_tunable(tunable_text[i]);
    if (!value)
      return fail(fmt::format("argument {}: invalid value: '{}' (expected an integer from 1 to {})", t.flag,
                              tunable_text[i], worker::kTunableMax));
    flags.tunables.emplace_back(t.env, *value);
  }

  CommandLine result;
  result.flags = std::move(flags);
  return result;
}

}  // namespace arbiter
