// The scoring timeout's deadline (see ScoringTimer in score.cpp): score() publishes when the running run()
// times out, the I/O thread sends SIGALRM to the Python thread when that time has come, and the Python
// SIGALRM handler asks scoring_deadline_passed() before it raises TimeoutError.
#include "../base/base.h"
#include "embedded.h"

namespace bridge {

namespace embedded {

std::atomic<bool> timeout_raised{false};
std::atomic<uint64_t> run_deadline_ns{0};

bool scoring_deadline_passed() {
  uint64_t deadline = run_deadline_ns.load();
  // None runs, or this one began after the signal was meant for its predecessor: not a timeout.
  if (deadline == 0 || base::monotonic_ns() < deadline) return false;
  timeout_raised.store(true);
  return true;
}

}  // namespace embedded

uint64_t scoring_deadline_ns() { return embedded::run_deadline_ns.load(); }

bool scoring_timeout_raised() { return embedded::timeout_raised.load(); }

}  // namespace bridge
