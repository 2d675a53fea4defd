// The options table (options.h) and what is read from it: the usage line and --help in argparse's
// layout, the one integer parser, and the merge of a flag with its environment variable.
#include "options.h"

#include <stdlib.h>

#include <cctype>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../worker/worker.h"

#ifndef AZMLINFSRV_VERSION
#define AZMLINFSRV_VERSION "0"
#endif

namespace arbiter {

namespace {

constexpr int64_t kPortMax = 65535;
// Big enough for any size or millisecond count, small enough that adding a timeout to a nanosecond
// clock cannot overflow.
constexpr int64_t kTransportMax = int64_t{1} << 40;

// The transport sizes are gunicorn's defaults (docs/behaviour.md 2.1) plus the body limit of
// docs/differences.md. The head timeout bounds slowloris; the body timeout is a pause between reads,
// so a large upload on a slow link still succeeds; the keep-alive timeout outlasts common
// load-balancer idle timeouts' retries.
const Option kOptions[] = {
    {Opt::entry_script, "--entry_script", "ENTRY_SCRIPT", Type::text, nullptr, 0, 0, 0, "", "",
     "The relative or absolute path to the scoring script."},
    {Opt::model_dir, "--model_dir", "MODEL_DIR", Type::text, nullptr, 0, 0, 0, "", "",
     "The relative or absolute path to the directory holding the model used for inferencing."},
    {Opt::appinsights_instrumentation_key, "--appinsights_instrumentation_key", "APPINSIGHTS_INSTRUMENTATION_KEY",
     Type::text, nullptr, 0, 0, 0, "", "",
     "The instrumentation key of the Application Insights resource where the logs will be published."},
    // A pre-set SERVER_PORT or HEALTH_PORT is ignored on purpose (docs/behaviour.md 8.6): no env.
    {Opt::port, "--port", "PORT", Type::integer, nullptr, 1, kPortMax, 5001, "validate_port", "",
     "The serving port of the server. Default is {default}."},
    {Opt::health_port, "--health_port", "HEALTH_PORT", Type::integer, nullptr, 1, kPortMax, 5000, "validate_port",
     "", "The health port of the server, used when SEPERATE_HEALTH_ENDPOINT=true. Default is {default}."},
    {Opt::worker_count, "--worker_count", "WORKER_COUNT", Type::integer, "WORKER_COUNT", 1, worker::kMaxWorkers, 1,
     "validate_worker_count", "the number of worker processes, and one server runs at most {high}",
     "The number of worker processes that will serve concurrent requests. Default is {default}."},
    {Opt::access_control_allow_origins, "--access_control_allow_origins", "ACCESS_CONTROL_ALLOW_ORIGINS", Type::text,
     nullptr, 0, 0, 0, "", "", "Enable CORS for the specified origins. Separate multiple origins with \",\"."},
    {Opt::config_file, "--config_file", "CONFIG_FILE", Type::text, nullptr, 0, 0, 0, "", "",
     "The path to the configuration file (config.json)."},
    {Opt::python, "--python", "PYTHON", Type::text, nullptr, 0, 0, 0, "", "",
     "The Python interpreter (of a virtual environment, say) whose packages the scoring script imports. "
     "Default: $VIRTUAL_ENV/bin/python when a virtual environment is active, else the Python azmlinfsrv was "
     "built with."},
    {Opt::graceful_timeout, "--graceful_timeout", "SECONDS", Type::integer, "GRACEFUL_TIMEOUT", 0, 86400, 30, "int",
     "the graceful stop timeout in seconds",
     "On SIGTERM, how long requests in flight may take to finish before workers are killed. Default is "
     "{default}."},
    {Opt::max_requests, "--max_requests", "N", Type::integer, "MAX_REQUESTS", 0, INT32_MAX, 0, "int",
     "the number of requests after which a worker is replaced (0: never)",
     "Replace a worker, without downtime, after it served N requests. Default is {default} (never)."},
    {Opt::max_requests_jitter, "--max_requests_jitter", "N", Type::integer, "MAX_REQUESTS_JITTER", 0, INT32_MAX, 0,
     "int", "the random extra added to MAX_REQUESTS",
     "Add a random 0..N to --max_requests per worker, so workers are not all replaced at once. Default is "
     "{default}."},
    {Opt::reload, "--reload", nullptr, Type::toggle, nullptr, 0, 0, 0, "", "",
     "Watch the entry script's folder and reload the workers (as SIGHUP does) when a file in it changes."},
    {Opt::dev, "--dev", nullptr, Type::toggle, nullptr, 0, 0, 0, "", "",
     "For your own machine: listen on 127.0.0.1 only, turn on --reload, and put a failed run()'s exception "
     "and stack into its answer. See docs/debugging.md."},
    {Opt::capture, "--capture", "DIR", Type::text, "AZMLINFSRV_CAPTURE_DIR", 0, 0, 0, "", "",
     "Save each request whose run() raised, crashed or timed out as one file in DIR (the last 100; latest.json "
     "is the newest), to run again with --replay. Env: {env}."},
    {Opt::replay, "--replay", "FILE", Type::text, nullptr, 0, 0, 0, "", "",
     "Run init(), then run() on the request in FILE (saved by --capture, or a plain JSON body) in this "
     "process, without HTTP; print the answer and exit 0, or the traceback and exit 1."},
    {Opt::pdb, "--pdb", nullptr, Type::toggle, nullptr, 0, 0, 0, "", "",
     "With --replay: stop in pdb where run() raised."},
    {Opt::log_format, "--log_format", "{text,json}", Type::choice, "AZMLINFSRV_LOG_FORMAT", 0, 0, 0, "", "",
     "text: the reference's log lines (default); json: one JSON object per line, with the request id, for log "
     "shippers. Env: {env}."},
    {Opt::metrics_port, "--metrics_port", "PORT", Type::integer, "AZMLINFSRV_METRICS_PORT", 1, kPortMax, 0,
     "validate_port", "the port of the metrics listener",
     "Serve GET /metrics (Prometheus) and GET /ready (readiness) on this port. Default: off. Env: {env}."},
    {Opt::limit_request_line, "--limit_request_line", "N", Type::integer, "LIMIT_REQUEST_LINE", 1, kTransportMax,
     4094, "", "the longest request line in bytes",
     "Longest request line in bytes (method, target, version); longer is a 400. Default {default} (env {env})."},
    {Opt::limit_request_field_size, "--limit_request_field_size", "N", Type::integer, "LIMIT_REQUEST_FIELD_SIZE", 1,
     kTransportMax, 8190, "", "the longest header field in bytes",
     "Longest header field in bytes (name and value); longer is a 431. Default {default} (env {env})."},
    {Opt::limit_request_fields, "--limit_request_fields", "N", Type::integer, "LIMIT_REQUEST_FIELDS", 1,
     kTransportMax, 100, "", "the most header fields in one request",
     "Most header fields in one request; more is a 431. Default {default} (env {env})."},
    {Opt::limit_request_body, "--limit_request_body", "N", Type::integer, "LIMIT_REQUEST_BODY", 1, kTransportMax,
     int64_t{100} << 20, "", "the largest request body in bytes",
     "Largest request body in bytes; larger is a 413, decided before the body is read. Default {default} (env "
     "{env})."},
    {Opt::request_head_timeout_ms, "--request_head_timeout_ms", "N", Type::integer, "REQUEST_HEAD_TIMEOUT_MS", 1,
     kTransportMax, 30000, "", "the time allowed for a request's head in milliseconds",
     "Time allowed for a request's head (line and headers) from its first byte; then a 408. Default {default} "
     "(env {env})."},
    {Opt::request_body_timeout_ms, "--request_body_timeout_ms", "N", Type::integer, "REQUEST_BODY_TIMEOUT_MS", 1,
     kTransportMax, 30000, "", "the longest pause while reading a body in milliseconds",
     "Longest pause while reading a body or writing a response; then a 408 or a close. Default {default} (env "
     "{env})."},
    {Opt::keep_alive_timeout_ms, "--keep_alive_timeout_ms", "N", Type::integer, "KEEP_ALIVE_TIMEOUT_MS", 1,
     kTransportMax, 60000, "", "the keep-alive timeout in milliseconds",
     "How long an idle keep-alive connection stays open between requests. Default {default} (env {env})."},
    {Opt::rest, "--rest", nullptr, Type::toggle, nullptr, 0, 0, 0, "", "", "", true},
    // gunicorn's --timeout: seconds, 0 turns the watch off. Not exported when absent, so the banner
    // keeps showing None (docs/behaviour.md 1.4).
    {Opt::worker_timeout, nullptr, nullptr, Type::integer, "WORKER_TIMEOUT", 0, 86400 * 365, 300, "", 
     "the worker timeout in seconds (0: none)", "", true},
};
static_assert(std::size(kOptions) == kOptionCount, "one row per Opt, in its order");

// argparse's HelpFormatter at 80 columns: text 78 wide, help from column 24.
constexpr size_t kWidth = 78;
constexpr size_t kHelpColumn = 24;

// textwrap.wrap: words greedily onto lines of at most width characters.
std::vector<std::string> wrap(std::string_view text, size_t width) {
  std::vector<std::string> lines;
  std::string line;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    if (end == i) break;
    std::string_view word = text.substr(i, end - i);
    if (!line.empty() && line.size() + 1 + word.size() > width) lines.push_back(std::exchange(line, {}));
    line += (line.empty() ? "" : " ") + std::string(word);
    i = end;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string help_entry(std::string_view invocation, std::string_view help) {
  std::string out = fmt::format("  {}", invocation);
  std::vector<std::string> lines = wrap(help, kWidth - kHelpColumn);
  if (out.size() + 2 <= kHelpColumn && !lines.empty())
    out += std::string(kHelpColumn - out.size(), ' ') + lines[0] + "\n";
  else
    out += "\n" + (lines.empty() ? "" : std::string(kHelpColumn, ' ') + lines[0] + "\n");
  for (size_t i = 1; i < lines.size(); ++i) out += std::string(kHelpColumn, ' ') + lines[i] + "\n";
  return out;
}

}  // namespace

std::span<const Option> options() { return kOptions; }

const Option& option(Opt id) { return kOptions[static_cast<int>(id)]; }

std::optional<int64_t> parse_integer(std::string_view text, int64_t low, int64_t high) {
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  bool negative = !text.empty() && text.front() == '-';
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) text.remove_prefix(1);
  if (text.empty() || text.size() > 18) return std::nullopt;  // 18 digits cannot overflow
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (negative) value = -value;
  if (value < low || value > high) return std::nullopt;
  return value;
}

std::string describe_range(const Option& o) {
  return o.high == INT32_MAX ? fmt::format("an integer of at least {}", o.low)
                             : fmt::format("an integer from {} to {}", o.low, o.high);
}

std::string usage_text() {
  // argparse's usage: the program, then each option, wrapped under the first.
  const std::string prefix = "usage: azmlinfsrv";
  const size_t indent = prefix.size() + 1;
  std::string out = prefix;
  size_t line = prefix.size();
  auto add = [&](const std::string& part) {
    if (line + 1 + part.size() > kWidth) {
      out += "\n" + std::string(indent - 1, ' ');
      line = indent - 1;
    }
    out += " " + part;
    line += 1 + part.size();
  };
  add("[-h]");
  for (const Option& o : kOptions) {
    if (o.hidden) continue;
    add(o.type == Type::toggle ? fmt::format("[{}]", o.flag) : fmt::format("[{} {}]", o.flag, o.metavar));
  }
  return out + "\n";
}

std::string help_text() {
  std::string out = fmt::format("Azure ML Inferencing HTTP server v{}\n\noptions:\n", AZMLINFSRV_VERSION);
  out += help_entry("-h, --help", "show this help message and exit");
  out += help_entry("--version", "show the server's version and exit");
  for (const Option& o : kOptions) {
    if (o.hidden) continue;
    std::string invocation = o.type == Type::toggle ? o.flag : fmt::format("{} {}", o.flag, o.metavar);
    out += help_entry(invocation, fmt::format(fmt::runtime(o.help), fmt::arg("default", o.default_value),
                                              fmt::arg("env", o.env ? o.env : "")));
  }
  return out;
}

int64_t resolve(const Flags& flags, Opt id, std::string& error) {
  const Option& o = option(id);
  if (const auto& given = flags.number_of(id)) return *given;
  const char* text = o.env ? getenv(o.env) : nullptr;
  if (!text) return o.default_value;
  if (auto value = parse_integer(text, o.low, o.high)) return *value;
  if (error.empty())
    error = fmt::format(
        "The environment variable {}='{}' is not valid: it is {}. Set it to a whole number from {} to {}{} unset it "
        "for the default {}{}.",
        o.env, text, fmt::format(fmt::runtime(o.what), fmt::arg("high", o.high)), o.low, o.high, o.flag ? "," : " or",
        o.default_value, o.flag ? fmt::format(", or pass {}", o.flag) : "");
  return o.default_value;
}

}  // namespace arbiter
