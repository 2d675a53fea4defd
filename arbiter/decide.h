// The arbiter's decisions, apart from the processes they are about: what a worker's phase and its slot
// in the table call for, how long to wait after quick deaths, when a reload is done or cancelled, what
// a death means. Plain functions of plain values, so tests need no fork (tests/unit/test_decide.cpp).
// Internal to arbiter/: arbiter.cpp is the only user.
#pragma once

#include <cstdint>
#include <vector>

#include "../worker/worker.h"

namespace arbiter {

constexpr uint64_t kSecond = 1000000000ull;
// A worker's I/O thread refreshes its heartbeat every second; three missed beats is silence.
constexpr uint64_t kSilentHeartbeatNs = 3 * kSecond;
// Back-off: a worker dying sooner than kQuickDeathNs after its start makes the next start wait,
// from kFirstBackoffNs doubling up to kMaxBackoffNs; kStablePeriodNs without such a death resets it.
constexpr uint64_t kQuickDeathNs = 5 * kSecond;
constexpr uint64_t kFirstBackoffNs = kSecond / 10;
constexpr uint64_t kMaxBackoffNs = 30 * kSecond;
constexpr uint64_t kStablePeriodNs = 10 * kSecond;

// Where a worker is in its life, as the arbiter sees it. Each phase is one of the arbiter's
// promises: serving and kept workers count towards the target; a retiring one serves until its
// replacement is ready; a stopping one is on its way out and its exit is expected.
enum class Phase {
  serving,   // counts; may be replaced for age
  kept,      // counts; its replacement failed to boot, so it is not replaced for age again
  retiring,  // being replaced (reload, age): serves until every new worker is ready, then stops
  stopping,  // told to stop or given up on: no longer counts
};

inline bool counts(Phase p) { return p == Phase::serving || p == Phase::kept; }

// What the arbiter reads of one worker's slot in the table.
struct SlotView {
  bool ready = false;  // past init(): only then is it timed (docs/behaviour.md 2.4)
  uint64_t run_started_ns = 0;
  uint64_t heartbeat_ns = 0;
  bool replace_requested = false;
  uint64_t requests_served = 0;
};

struct Verdict {
  enum Kind { fine, run_too_long, silent, asked_replacement, due_for_age } kind = fine;
  uint64_t running_ns = 0;  // how long its run() has been running
  uint64_t silent_ns = 0;   // how long since its last heartbeat
};

// One worker's check in each pass: its timeout (worker_timeout_ns 0: none), its request to be
// replaced, its age (max_requests 0: never).
Verdict judge(Phase phase, const SlotView& slot, uint64_t now, uint64_t worker_timeout_ns, uint64_t max_requests);

// The delay before the next start after a worker died lifetime_ns after its own; 0: no wait.
// Workers that die soon after they start, before they are ready, are restarted with a doubling delay
// (gunicorn restarts them at once, forever: a crash loop that burns the CPU and floods the log). A
// worker that got ready proves the script loads: one that dies later (a request crashed it) is
// replaced at once, however many did so before, and its death resets the delay. A calm period too.
struct Backoff {
  uint64_t delay_ns = 0;  // the current delay; 0 after a calm period
  uint64_t last_quick_death_ns = 0;
  uint64_t after_death(uint64_t lifetime_ns, bool was_ready, uint64_t now);
  void reset() { delay_ns = 0; }
};

// A reload (or a replacement for age) is done when the workers that count are the target's number and
// all ready: then the retiring ones stop. Nothing drops meanwhile, since the listeners are shared.
struct Member {
  Phase phase;
  bool ready;
};
bool replacement_ready(const std::vector<Member>& workers, int target);

// A new worker died while booting during a reload: the script on disk is broken now. What becomes of
// each other worker: the retiring keep serving; the rest of the new generation goes (a booting one
// killed at once, a ready one stopped, since it may have read the file before the bad edit).
enum class OnFailedReload { nothing, keep, kill, stop };
OnFailedReload on_failed_reload(Phase phase, bool booting, uint64_t spawned_ns, uint64_t new_generation_since_ns);

// What a worker's death means.
enum class Death {
  expected,           // stopping, or the server is stopping
  asked_replacement,  // it asked to be replaced and left before the arbiter saw it
  old_generation,     // a retiring worker died: the new generation covers it
  failed_reload,      // on_failed_reload()
  boot_failure,       // the server cannot start: stop everything, exit 3
  crash,              // replace it, after the back-off
};
Death classify_death(bool server_running, Phase phase, bool asked_replacement, bool was_booting, bool reloading,
                     int exit_code);  // exit_code: -1 when killed by a signal

// SIGTTIN: one more worker, up to worker::kMaxWorkers.
inline bool may_add_worker(int target) { return target < worker::kMaxWorkers; }

}  // namespace arbiter
