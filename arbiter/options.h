// Every option of the server in one table: its flag, its environment variable, its type, its range, its
// default and its help. The usage line, --help, the parsing, the environment merge and the limits are
// all read from it, so an option cannot be listed in one and missing from another.
//
// The table lives in the arbiter, transport settings included: the arbiter resolves every value (the
// flag, else the environment, else the default), refuses a bad one at start, and hands the result to
// each worker it forks (worker::Settings in worker/worker.h). A worker only reads; it knows no default.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace arbiter {

// In the order of --help: the reference's own flags first, in its order, then ours.
enum class Opt {
  entry_script,
  model_dir,
  appinsights_instrumentation_key,
  port,
  health_port,
  worker_count,
  access_control_allow_origins,
  config_file,
  python,
  graceful_timeout,
  max_requests,
  max_requests_jitter,
  reload,
  dev,
  capture,
  replay,
  pdb,
  log_format,
  metrics_port,
  limit_request_line,
  limit_request_field_size,
  limit_request_fields,
  limit_request_body,
  request_head_timeout_ms,
  request_body_timeout_ms,
  keep_alive_timeout_ms,
  rest,            // accepted and hidden, as the reference's
  worker_timeout,  // environment only
  count
};
constexpr int kOptionCount = static_cast<int>(Opt::count);

enum class Type { text, integer, choice, toggle };

struct Option {
  Opt id;
  const char* flag;     // "--port"; nullptr: environment only
  const char* metavar;  // "PORT" in usage and help
  Type type;
  const char* env;      // merged under the flag (the flag wins); nullptr: none
  int64_t low = 0, high = 0, default_value = 0;  // integers
  const char* validator = "int";  // argparse's name for the check, in its message
  const char* what = "";          // what the number is, for an environment error
  const char* help = "";          // one paragraph; "{default}" and "{env}" are filled in
  bool hidden = false;            // accepted, but not in usage or help
};

std::span<const Option> options();
const Option& option(Opt id);

// The one integer parser: an optional sign and decimal digits (surrounding blanks allowed, as Python's
// int() allows them), from low to high; nullopt otherwise.
std::optional<int64_t> parse_integer(std::string_view text, int64_t low, int64_t high);

// "an integer from 1 to 128", as error messages give a range.
std::string describe_range(const Option& o);

// usage: and --help, in argparse's layout (80 columns).
std::string usage_text();
std::string help_text();  // the description and the options, without the usage

// What the command line gave; an option not given stays empty.
struct Flags {
  std::optional<std::string> text[kOptionCount];
  std::optional<int64_t> number[kOptionCount];
  bool on[kOptionCount] = {};

  const std::optional<std::string>& text_of(Opt id) const { return text[static_cast<int>(id)]; }
  const std::optional<int64_t>& number_of(Opt id) const { return number[static_cast<int>(id)]; }
  bool is_on(Opt id) const { return on[static_cast<int>(id)]; }
};

// An integer option's value: the flag, else its environment variable, else the default. A bad
// environment value leaves the default and sets error (when it is empty) to a message naming the
// variable, the value, the valid range and what to do.
int64_t resolve(const Flags& flags, Opt id, std::string& error);

}  // namespace arbiter
