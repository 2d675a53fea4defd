// worker/: one worker process. Its main thread is the Python thread (boot, init(), one run() at a time);
// its I/O thread runs the libuv loop: accept, parse, route, answer what needs no Python, queue score
// jobs, write responses. This header is all the arbiter sees of a worker: no HTTP, no Python.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "metrics.h"

namespace worker {

enum class SlotState : uint32_t { empty = 0, booting, ready, exiting };

// One worker's line in the shared supervision table (docs/architecture.md "Processes"). The worker writes
// it, the arbiter reads it; lock-free atomics are safe across processes on a MAP_SHARED page.
struct Slot {
  std::atomic<int32_t> pid;
  std::atomic<SlotState> state;
  std::atomic<uint64_t> heartbeat_ns;    // CLOCK_MONOTONIC, refreshed by the I/O thread
  std::atomic<uint64_t> run_started_ns;  // CLOCK_MONOTONIC when the current run() began; 0 when idle
  // CLOCK_MONOTONIC since when the worker has had work for its Python thread, or 1 while it takes no
  // connections at all (booting, draining); 0: idle and taking connections. Workers read each other's
  // to leave new connections to an idle one (worker/accept.cpp).
  std::atomic<uint64_t> busy_since_ns;
  std::atomic<uint64_t> requests_served;
  // Set by a worker that cannot go on serving (run() stuck in native code past the scoring timeout):
  // it has stopped accepting and exits once its connections are answered; the arbiter replaces it.
  std::atomic<uint32_t> replace_requested;
  // The run_started_ns of the run() the arbiter declared past WORKER_TIMEOUT, set before it signals:
  // nothing that run() returns may reach its client, even when the stack dump's signal interrupted
  // the call and run() returned before the worker handled the timeout's own signal. 0: none.
  std::atomic<uint64_t> timed_out_run_ns;
  // The workers' own counters for GET /metrics (metrics.h). The arbiter neither reads nor resets them:
  // they outlive the worker, so a replacement in this slot continues them.
  SlotMetrics metrics;
};

constexpr int kMaxSlots = 256;
// The most workers one server runs: a reload starts the whole new generation beside the old one,
// and both must find a slot.
constexpr int kMaxWorkers = kMaxSlots / 2;

// Why the arbiter replaced a worker. crash: it died without being asked (a signal, an exit);
// timeout: WORKER_TIMEOUT, or run() stuck in native code past the scoring timeout; max_requests: its age;
// reload: SIGHUP or --reload.
enum class RestartCause : uint32_t { crash = 0, timeout, max_requests, reload };
constexpr int kRestartCauses = 4;

enum BootReport : uint32_t { kBootReportNone = 0, kBootReportWriting, kBootReportWritten };

struct Table {
  // A BootReport: the first worker that fails to boot reports, so a failure shared by N workers is
  // reported once; the others wait until it is written before they exit, since the arbiter stops the
  // whole generation at the first exit.
  std::atomic<uint32_t> boot_failure_reported;
  // Set by the arbiter when the whole server starts to stop, before it signals the workers: a worker
  // told to stop then knows whether it leaves alone (a reload) or with everyone (its readiness says so).
  std::atomic<uint32_t> stopping;
  // Replacements by cause, written only by the arbiter where it decides one; never reset.
  std::atomic<uint64_t> restarts[kRestartCauses];
  Slot slots[kMaxSlots];
};

// The values the arbiter resolved (flag, environment variable or default, checked at start) and hands
// to each worker it forks. The worker keeps no default of its own: the arbiter's options table
// (arbiter/options.cpp) holds them all.
struct Settings {
  uint64_t limit_request_line = 0;        // bytes; longer is a 400
  uint64_t limit_request_field_size = 0;  // bytes; longer is a 431
  uint64_t limit_request_fields = 0;      // header fields; more is a 431
  uint64_t limit_request_body = 0;        // bytes; larger is a 413
  uint64_t request_head_timeout_ms = 0;
  uint64_t request_body_timeout_ms = 0;
  uint64_t keep_alive_timeout_ms = 0;
  uint64_t worker_timeout_s = 0;  // WORKER_TIMEOUT, which the arbiter enforces; 0: none
  // The developer's loop (docs/debugging.md). dev: a failed run()'s exception and stack go into its answer.
  // serve_load_failure (--reload, --dev): a script that fails to load leaves the worker up, answering /score
  // with a 503 that names the error, until an edit reloads it. capture_dir: non-empty, each failed request
  // is saved there (--capture).
  bool dev = false;
  bool serve_load_failure = false;
  std::string capture_dir;
};

struct Options {
  Settings settings;
  std::vector<int> listen_fds;  // bound and listening, inherited from the arbiter
  int metrics_fd = -1;          // the metrics listener (--metrics_port), likewise; -1: none
  // A socket pair all workers share, [0] to send and [1] to receive: a worker hands a connection whose
  // request it cannot start soon to whichever worker is free first (worker/handoff.cpp). -1s: none.
  int handoff_fds[2] = {-1, -1};
  Table* table = nullptr;
  int slot = 0;
  std::string interpreter;          // --python: the environment's interpreter, or empty
  std::string default_interpreter;  // the Python the build embedded
  std::string package_dir;   // folder holding the azureml_inference_server_http package
};

// Exit codes the arbiter reads.
constexpr int kExitStopped = 0;
constexpr int kExitBootFailed = 3;

// Signals the arbiter sends a ready worker whose run() outlived WORKER_TIMEOUT: the first makes
// faulthandler write every Python stack to stderr, the second makes the I/O thread answer the client
// of the stuck request. SIGKILL follows.
constexpr int kSignalDumpStacks = SIGUSR1;
constexpr int kSignalAnswerTimedOut = SIGUSR2;

// Runs the worker in the calling (freshly forked) process; never returns.
[[noreturn]] void run(const Options& options);

// --replay FILE: one request (a file --capture saved, or a plain JSON body for POST /score) through a
// worker's input path in this process, without HTTP; the answer on stdout. Returns the exit code: 0 when
// run() returned, 1 when it raised, 2 for a file that cannot be replayed, 3 when the script fails to load.
struct ReplayOptions {
  std::string file;
  bool pdb = false;  // --pdb: stop in pdb where run() raised
  std::string interpreter;
  std::string default_interpreter;
  std::string package_dir;
  int server_port = 0;  // SERVER_PORT, for the raw request's environ
};
int replay(const ReplayOptions& options);

}  // namespace worker
