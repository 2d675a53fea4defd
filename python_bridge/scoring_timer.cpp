// The scoring timeout's one interval timer (see ScoringTimer in score.cpp). Everything here runs on the
// worker's main thread: score() arms it, and the Python SIGALRM handler asks scoring_deadline_passed().
#include <sys/time.h>
#include <time.h>

#include "embedded.h"

namespace bridge::embedded {

std::atomic<bool> timeout_raised{false};
uint64_t run_deadline_ns = 0;
bool alarm_pending = false;

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void arm_alarm(uint64_t ns) {
  struct itimerval t {};
  uint64_t us = ns / 1000 > 0 ? ns / 1000 : 1;  // zero would disarm it
  t.it_value.tv_sec = static_cast<time_t>(us / 1000000);
  t.it_value.tv_usec = static_cast<suseconds_t>(us % 1000000);
  setitimer(ITIMER_REAL, &t, nullptr);
  alarm_pending = true;
}

bool scoring_deadline_passed() {
  alarm_pending = false;
  if (run_deadline_ns == 0) return false;  // fired between calls: the next run() arms it again
  uint64_t now = monotonic_ns();
  if (now < run_deadline_ns) {  // armed for an earlier run(): wait for what is left of this one
    arm_alarm(run_deadline_ns - now);
    return false;
  }
  timeout_raised.store(true);
  return true;
}

}  // namespace bridge::embedded
