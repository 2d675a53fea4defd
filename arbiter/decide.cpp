// The arbiter's decisions (decide.h).
#include "decide.h"

#include <algorithm>

namespace arbiter {

Verdict judge(Phase phase, const SlotView& slot, uint64_t now, uint64_t worker_timeout_ns, uint64_t max_requests) {
  Verdict v;
  if (phase == Phase::stopping || !slot.ready) return v;
  if (worker_timeout_ns) {
    v.running_ns = slot.run_started_ns && now > slot.run_started_ns ? now - slot.run_started_ns : 0;
    v.silent_ns = now > slot.heartbeat_ns ? now - slot.heartbeat_ns : 0;
    if (v.running_ns > worker_timeout_ns) v.kind = Verdict::run_too_long;
    // The heartbeat ticks every second: a small WORKER_TIMEOUT must not mistake its jitter for silence.
    else if (v.silent_ns > std::max(worker_timeout_ns, kSilentHeartbeatNs)) v.kind = Verdict::silent;
    if (v.kind != Verdict::fine) return v;
  }
  if (slot.replace_requested) v.kind = Verdict::asked_replacement;
  else if (max_requests && phase == Phase::serving && slot.requests_served >= max_requests) v.kind = Verdict::due_for_age;
  return v;
}

uint64_t Backoff::after_death(uint64_t lifetime_ns, bool was_ready, uint64_t now) {
  if (was_ready || lifetime_ns >= kQuickDeathNs) return delay_ns = 0;
  if (delay_ns == 0 || now - last_quick_death_ns > delay_ns + kStablePeriodNs)
    delay_ns = kFirstBackoffNs;
  else
    delay_ns = std::min(delay_ns * 2, kMaxBackoffNs);
  last_quick_death_ns = now;
  return delay_ns;
}

bool replacement_ready(const std::vector<Member>& workers, int target) {
  bool reloading = false;
  int counting = 0;
  for (const Member& m : workers) {
    if (m.phase == Phase::retiring) reloading = true;
    if (!counts(m.phase)) continue;
    if (!m.ready) return false;
    ++counting;
  }
  return reloading && counting >= target;
}

OnFailedReload on_failed_reload(Phase phase, bool booting, uint64_t spawned_ns, uint64_t new_generation_since_ns) {
  if (phase == Phase::retiring) return OnFailedReload::keep;
  if (phase == Phase::stopping || spawned_ns < new_generation_since_ns) return OnFailedReload::nothing;
  return booting ? OnFailedReload::kill : OnFailedReload::stop;
}

Death classify_death(bool server_running, Phase phase, bool asked_replacement, bool was_booting, bool reloading,
                     int exit_code) {
  if (!server_running || phase == Phase::stopping) return Death::expected;
  if (asked_replacement) return Death::asked_replacement;
  if (phase == Phase::retiring) return Death::old_generation;
  if (was_booting && reloading) return Death::failed_reload;
  if (was_booting && exit_code == worker::kExitBootFailed) return Death::boot_failure;
  return Death::crash;
}

}  // namespace arbiter
