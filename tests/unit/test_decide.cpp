// arbiter/decide.h: the arbiter's decisions, without a process.
#include <catch2/catch.hpp>

#include "../../arbiter/decide.h"
#include "../../arbiter/listen.h"

using namespace arbiter;

namespace {

constexpr uint64_t kT0 = 1000 * kSecond;  // an arbitrary "now"

SlotView ready_slot() {
  SlotView s;
  s.ready = true;
  s.heartbeat_ns = kT0;
  return s;
}

}  // namespace

TEST_CASE("timeouts: a run() past WORKER_TIMEOUT, a silent I/O thread; never during init()") {
  SlotView slot = ready_slot();
  slot.run_started_ns = kT0 - 11 * kSecond;
  Verdict v = judge(Phase::serving, slot, kT0, 10 * kSecond, 0);
  CHECK(v.kind == Verdict::run_too_long);
  CHECK(v.running_ns == 11 * kSecond);
  CHECK(judge(Phase::serving, slot, kT0, 12 * kSecond, 0).kind == Verdict::fine);
  CHECK(judge(Phase::serving, slot, kT0, 0, 0).kind == Verdict::fine);  // 0: no timeout
  CHECK(judge(Phase::retiring, slot, kT0, 10 * kSecond, 0).kind == Verdict::run_too_long);
  CHECK(judge(Phase::stopping, slot, kT0, 10 * kSecond, 0).kind == Verdict::fine);
  slot.ready = false;  // init() is never timed
  CHECK(judge(Phase::serving, slot, kT0, 10 * kSecond, 0).kind == Verdict::fine);

  SlotView quiet = ready_slot();
  quiet.heartbeat_ns = kT0 - 2 * kSecond;
  // A 1 s WORKER_TIMEOUT does not take the heartbeat's one-second jitter for silence: three beats do.
  CHECK(judge(Phase::serving, quiet, kT0, 1 * kSecond, 0).kind == Verdict::fine);
  quiet.heartbeat_ns = kT0 - 4 * kSecond;
  Verdict silent = judge(Phase::serving, quiet, kT0, 1 * kSecond, 0);
  CHECK(silent.kind == Verdict::silent);
  CHECK(silent.silent_ns == 4 * kSecond);
  CHECK(judge(Phase::serving, quiet, kT0, 5 * kSecond, 0).kind == Verdict::fine);
}

TEST_CASE("a worker asking to be replaced, and retirement for max_requests") {
  SlotView slot = ready_slot();
  slot.requests_served = 100;
  CHECK(judge(Phase::serving, slot, kT0, 0, 100).kind == Verdict::due_for_age);
  CHECK(judge(Phase::serving, slot, kT0, 0, 101).kind == Verdict::fine);
  CHECK(judge(Phase::serving, slot, kT0, 0, 0).kind == Verdict::fine);  // 0: never
  CHECK(judge(Phase::kept, slot, kT0, 0, 100).kind == Verdict::fine);   // its replacement failed: kept
  CHECK(judge(Phase::retiring, slot, kT0, 0, 100).kind == Verdict::fine);
  slot.replace_requested = true;  // the request wins over age, and holds in any phase but stopping
  CHECK(judge(Phase::serving, slot, kT0, 0, 100).kind == Verdict::asked_replacement);
  CHECK(judge(Phase::retiring, slot, kT0, 0, 0).kind == Verdict::asked_replacement);
  CHECK(judge(Phase::stopping, slot, kT0, 0, 0).kind == Verdict::fine);
  slot.run_started_ns = kT0 - 20 * kSecond;  // a timeout wins over the request
  CHECK(judge(Phase::serving, slot, kT0, 10 * kSecond, 0).kind == Verdict::run_too_long);
}

TEST_CASE("back-off after quick deaths before ready: doubling from 0.1 s up to 30 s, reset by a calm period") {
  Backoff b;
  CHECK(b.after_death(10 * kSecond, false, kT0) == 0);  // lived long enough: start at once
  uint64_t now = kT0;
  CHECK(b.after_death(kSecond, false, now) == kFirstBackoffNs);
  CHECK(b.after_death(kSecond, false, now += kSecond) == 2 * kFirstBackoffNs);
  CHECK(b.after_death(kSecond, false, now += kSecond) == 4 * kFirstBackoffNs);
  for (int i = 0; i < 20; ++i) b.after_death(kSecond, false, now += kSecond);
  CHECK(b.delay_ns == kMaxBackoffNs);
  // Quiet for longer than the delay plus the stable period: back to the first delay.
  CHECK(b.after_death(kSecond, false, now += kMaxBackoffNs + kStablePeriodNs + 1) == kFirstBackoffNs);
  CHECK(b.after_death(kQuickDeathNs, false, now += kSecond) == 0);
  CHECK(b.delay_ns == 0);
  b.after_death(kSecond, false, now += kSecond);
  b.reset();  // a reload starts afresh
  CHECK(b.after_death(kSecond, false, now += kSecond) == kFirstBackoffNs);
}

TEST_CASE("a worker that was ready is replaced at once, however many crashed before it") {
  Backoff b;
  uint64_t now = kT0;
  for (int i = 0; i < 10; ++i) CHECK(b.after_death(kSecond / 100, true, now += kSecond / 100) == 0);
  CHECK(b.delay_ns == 0);
  // Boot deaths build the delay up; a ready worker's death clears it: the script loads again.
  b.after_death(kSecond, false, now += kSecond);
  b.after_death(kSecond, false, now += kSecond);
  CHECK(b.delay_ns == 2 * kFirstBackoffNs);
  CHECK(b.after_death(kSecond, true, now += kSecond) == 0);
  CHECK(b.after_death(kSecond, false, now += kSecond) == kFirstBackoffNs);
}

TEST_CASE("a reload is done when the target's number of workers count and all are ready") {
  using P = Phase;
  CHECK_FALSE(replacement_ready({{P::serving, true}, {P::serving, true}}, 2));  // nothing to replace
  CHECK(replacement_ready({{P::retiring, true}, {P::serving, true}}, 1));
  CHECK_FALSE(replacement_ready({{P::retiring, true}, {P::serving, false}}, 1));  // still booting
  CHECK_FALSE(replacement_ready({{P::retiring, true}, {P::serving, true}}, 2));   // one short
  CHECK(replacement_ready({{P::retiring, true}, {P::kept, true}, {P::serving, true}}, 2));
  CHECK(replacement_ready({{P::retiring, true}, {P::stopping, false}, {P::serving, true}}, 1));
}

TEST_CASE("a failed reload keeps the old workers and removes the new generation") {
  const uint64_t since = kT0;
  CHECK(on_failed_reload(Phase::retiring, false, since - kSecond, since) == OnFailedReload::keep);
  CHECK(on_failed_reload(Phase::serving, true, since + 1, since) == OnFailedReload::kill);
  CHECK(on_failed_reload(Phase::serving, false, since + 1, since) == OnFailedReload::stop);
  CHECK(on_failed_reload(Phase::serving, false, since - 1, since) == OnFailedReload::nothing);  // an old one
  CHECK(on_failed_reload(Phase::stopping, true, since + 1, since) == OnFailedReload::nothing);
  CHECK(on_failed_reload(Phase::kept, false, since - 1, since) == OnFailedReload::nothing);
}

TEST_CASE("what a death means") {
  constexpr int kSignalled = -1;
  CHECK(classify_death(false, Phase::serving, false, false, false, 1) == Death::expected);
  CHECK(classify_death(true, Phase::stopping, true, false, false, 1) == Death::expected);
  CHECK(classify_death(true, Phase::serving, true, false, false, kSignalled) == Death::asked_replacement);
  CHECK(classify_death(true, Phase::retiring, false, false, true, kSignalled) == Death::old_generation);
  CHECK(classify_death(true, Phase::serving, false, true, true, 3) == Death::failed_reload);
  CHECK(classify_death(true, Phase::serving, false, true, false, 3) == Death::boot_failure);
  CHECK(classify_death(true, Phase::serving, false, true, false, kSignalled) == Death::crash);
  CHECK(classify_death(true, Phase::serving, false, false, false, 3) == Death::crash);  // 3 after boot
  CHECK(classify_death(true, Phase::kept, false, false, false, 0) == Death::crash);
}

TEST_CASE("SIGTTIN stops at the most workers one server runs") {
  CHECK(may_add_worker(1));
  CHECK(may_add_worker(worker::kMaxWorkers - 1));
  CHECK_FALSE(may_add_worker(worker::kMaxWorkers));
}

TEST_CASE("--reload: which changed files are edits") {
  CHECK(is_edit("score.py"));
  CHECK(is_edit("model.json"));
  for (const char* name : {".score.py.swp", "score.py~", "__pycache__", "4913", "x.pyc", "x.tmp", "x.swx"})
    CHECK_FALSE(is_edit(name));
}
