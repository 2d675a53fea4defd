// worker/: one worker process. Its main thread is the Python thread (boot, init(), one run() at a time);
// its I/O thread runs the libuv loop: accept, parse, route, answer what needs no Python, queue score
// jobs, write responses. This header is all the arbiter sees of a worker: no HTTP, no Python.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace worker {

enum class SlotState : uint32_t { empty = 0, booting, ready, exiting };

// One worker's line in the shared supervision table (DESIGN.md "Process model"). The worker writes
// it, the arbiter reads it; lock-free atomics are safe across processes on a MAP_SHARED page.
struct Slot {
  std::atomic<int32_t> pid;
  std::atomic<SlotState> state;
  std::atomic<uint64_t> heartbeat_ns;    // CLOCK_MONOTONIC, refreshed by the I/O thread
  std::atomic<uint64_t> run_started_ns;  // CLOCK_MONOTONIC when the current run() began; 0 when idle
  std::atomic<uint64_t> requests_served;
  // Set by a worker that cannot go on serving (run() stuck in native code past the scoring timeout):
  // it has stopped accepting and exits once its connections are answered; the arbiter replaces it.
  std::atomic<uint32_t> replace_requested;
};

constexpr int kMaxSlots = 256;

struct Table {
  // Set by the first worker that fails to boot, so a failure shared by N workers is reported once.
  std::atomic<uint32_t> boot_failure_reported;
  Slot slots[kMaxSlots];
};

struct Options {
  std::vector<int> listen_fds;  // bound and listening, inherited from the arbiter
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

uint64_t monotonic_ns();

}  // namespace worker
