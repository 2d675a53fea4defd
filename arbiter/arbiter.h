// arbiter/: the launcher that becomes the arbiter. Command line, environment and configuration, the
// banner, binding the listeners, forking workers and supervising them. Knows nothing of HTTP or
// Python: a worker is a function it calls in a child (worker/worker.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../worker/worker.h"
#include "options.h"

namespace arbiter {

struct CommandLine {
  enum class Outcome { run, exit } outcome = Outcome::run;
  int exit_code = 0;
  std::string out;  // text for stdout (help, or the options list after an error)
  std::string err;  // text for stderr (usage and the error)
  Flags flags;
};

// Parses argv the way the reference's argparse does: messages, streams and exit codes of
// docs/behaviour.md 1.2, except that -h/--help exits 0 (docs/differences.md).
CommandLine parse_command_line(int argc, const char* const* argv);

// What the launcher decided after merging flags into the environment (docs/behaviour.md 1.3).
struct Launch {
  // The defaults are the options table's (options.cpp); apply_*() fill every field.
  int port = 0;
  int health_port = 0;
  bool separate_health = false;
  int worker_count = 0;
  std::vector<std::string> notices;  // plain prints that precede the banner
  std::string error;                 // non-empty: refuse to start (exit 1) with this message
  // Supervision (apply_supervision_settings).
  int worker_timeout_s = 0;      // WORKER_TIMEOUT; 0: never
  int graceful_timeout_s = 0;    // --graceful_timeout / GRACEFUL_TIMEOUT
  int max_requests = 0;          // --max_requests / MAX_REQUESTS; 0: never replace for age
  int max_requests_jitter = 0;   // --max_requests_jitter / MAX_REQUESTS_JITTER
  bool reload = false;           // --reload (or --dev): watch watch_dir and reload on change
  bool dev = false;              // --dev: 127.0.0.1 only, --reload, failures in the answers
  std::string watch_dir;         // the entry script's folder (or AML_APP_ROOT without one)
  int metrics_port = 0;          // --metrics_port / AZMLINFSRV_METRICS_PORT: the metrics listener; 0: none
  worker::Settings worker;       // handed to every worker (transport limits and timeouts, WORKER_TIMEOUT)
};

// Writes the environment variables the workers read and validates them. Reads and writes the real
// process environment, as the reference does, so every worker inherits the result.
Launch apply_flags_to_environment(const Flags& flags, const std::string& cwd);

// Reads the supervision settings (worker timeout, graceful timeout, max_requests, --reload) and the
// metrics port from the flags and the environment into launch; sets launch.error for a value it cannot
// use. Runs after apply_flags_to_environment(), whose AZUREML_ENTRY_SCRIPT and ports it reads.
void apply_supervision_settings(const Flags& flags, Launch& launch);

// The start-up banner of docs/behaviour.md 1.7, from the environment apply_flags_to_environment() wrote.
std::string banner(const Launch& launch);

struct WorkerProgram {
  std::string interpreter;  // --python, or empty
  std::string default_interpreter;
  std::string package_dir;
};

// Raises the soft open-file limit to the hard limit (every connection is a descriptor); workers inherit it.
void raise_open_file_limit();

// Binds the listeners, forks the workers and supervises them until a stop signal or a boot failure.
// Returns the process exit code: 0 after a stop, 1 when a port cannot be bound, 3 when a worker
// failed to boot.
int serve(const Launch& launch, const WorkerProgram& program);

}  // namespace arbiter
