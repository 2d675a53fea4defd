// The arbiter: the whole process lifecycle as one small loop, one handler per signal (after gunicorn's
// arbiter.py). Signal handlers only queue the signal on a self-pipe; everything happens in the loop.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>

#include <fmt/format.h>

#include "../base/base.h"
#include "../log/log.h"
#include "../worker/worker.h"
#include "arbiter.h"
#include "decide.h"
#include "listen.h"

namespace arbiter {

namespace {

constexpr int kPollMs = 250;
constexpr uint64_t kFastStopTimeoutNs = 2 * kSecond;
// After the stack-dump and answer signals, time for faulthandler and the I/O thread before SIGKILL.
constexpr uint64_t kKillAfterDumpNs = kSecond;
// An editor's save is a burst of events; reload once it is over.
constexpr uint64_t kReloadDebounceNs = 300 * 1000000ull;

int signal_pipe[2] = {-1, -1};

void on_signal(int signum) {
  int saved = errno;
  char byte = static_cast<char>(signum);
  (void)!write(signal_pipe[1], &byte, 1);
  errno = saved;
}

void log_error(logline::Level level, const std::string& message) {
  logline::write(logline::Stream::err, level, "gunicorn.error", message);
}

// Why a worker died, for the log: "was sent SIGSEGV (segmentation fault)".
std::string describe_signal(int sig) {
  const char* name = base::signal_name(sig);
  std::string shown = name ? name : fmt::format("signal {}", sig);
  switch (sig) {
    case SIGSEGV: return shown + " (segmentation fault: native code read or wrote memory it does not own)";
    case SIGBUS: return shown + " (bus error: a bad memory access in native code, or a truncated mapped file)";
    case SIGFPE: return shown + " (arithmetic error in native code, such as an integer division by zero)";
    case SIGILL: return shown + " (illegal instruction: native code built for another CPU, or corrupted)";
    case SIGABRT: return shown + " (abort: native code called abort(), often after a failed assertion)";
    default: return shown;
  }
}

double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

class Arbiter {
 public:
  Arbiter(const Launch& launch, const WorkerProgram& program, std::vector<int> listeners, int metrics_fd,
          const int handoff_fds[2], worker::Table* table, int watch_fd)
      : launch_(launch), program_(program), listeners_(std::move(listeners)), metrics_fd_(metrics_fd),
        handoff_fds_{handoff_fds[0], handoff_fds[1]}, table_(table),
        target_workers_(launch.worker_count), watch_fd_(watch_fd),
        worker_timeout_ns_(static_cast<uint64_t>(launch.worker_timeout_s) * kSecond),
        graceful_timeout_ns_(static_cast<uint64_t>(launch.graceful_timeout_s) * kSecond),
        random_(std::random_device{}()) {}

  // One pass: look at the table, start and stop workers, sleep until a signal, a file change or the
  // next deadline, reap. Everything the arbiter does happens here, never in a signal handler.
  int run() {
    for (;;) {
      uint64_t now = base::monotonic_ns();
      if (state_ == State::running) {
        check_workers(now);
        maybe_reload(now);
        spawn_missing_workers(now);
        retire_replaced(now);
      }
      kill_overdue(now);
      wait_for_events(next_wake_ms(now));
      reap();
      if (exit_code_ >= 0) return exit_code_;
      if (state_ != State::running && workers_.empty()) return finish();
    }
  }

 private:
  enum class State { running, stopping };

  struct Child {
    int slot = -1;
    Phase phase = Phase::serving;
    uint64_t spawned_ns = 0;
    uint64_t max_requests = 0;  // 0: never replaced for age
    uint64_t kill_at_ns = 0;    // non-zero: SIGKILL at this time if it still lives
    worker::RestartCause retire_cause = worker::RestartCause::reload;  // why it is retiring, counted when it goes
  };

  // The metrics' restart counters: one count where a replacement is decided (or, for a retiring worker,
  // carried out: a reload that fails replaces nobody).
  void count_restart(worker::RestartCause cause) {
    table_->restarts[static_cast<int>(cause)].fetch_add(1, std::memory_order_relaxed);
  }

  // ---- events ---------------------------------------------------------------------------------------

  int next_wake_ms(uint64_t now) const {
    uint64_t wake = now + kPollMs * 1000000ull;
    auto sooner = [&](uint64_t t) {
      if (t && t < wake) wake = t;
    };
    if (state_ == State::running && live_workers() < target_workers_) sooner(next_spawn_ns_);
    sooner(reload_due_ns_);
    for (auto& [pid, child] : workers_) sooner(child.kill_at_ns);
    return wake <= now ? 0 : static_cast<int>((wake - now + 999999) / 1000000);
  }

  void wait_for_events(int timeout_ms) {
    struct pollfd p[2] = {{signal_pipe[0], POLLIN, 0}, {watch_fd_, POLLIN, 0}};
    int n = poll(p, watch_fd_ >= 0 ? 2 : 1, timeout_ms);
    if (n <= 0) return;
    if (p[0].revents & POLLIN) {
      char signals[64];
      ssize_t got = read(signal_pipe[0], signals, sizeof signals);
      for (ssize_t i = 0; i < got; ++i) handle(signals[i]);
    }
    if (watch_fd_ >= 0 && (p[1].revents & POLLIN)) read_file_changes();
  }

  void handle(int signum) {
    switch (signum) {
      case SIGCHLD: break;  // reap() runs after every wake-up
      case SIGTERM: handle_term(); break;
      case SIGINT:
      case SIGQUIT: handle_quit(signum); break;
      case SIGHUP: handle_hup(); break;
      case SIGTTIN: handle_ttin(); break;
      case SIGTTOU: handle_ttou(); break;
      default: break;
    }
  }

  void handle_term() {
    log_error(logline::Level::info, "Handling signal: term");
    begin_stop(SIGTERM, graceful_timeout_ns_);
  }

  void handle_quit(int signum) {
    log_error(logline::Level::info, signum == SIGINT ? "Handling signal: int" : "Handling signal: quit");
    begin_stop(SIGQUIT, kFastStopTimeoutNs);
  }

  void handle_hup() {
    log_error(logline::Level::info, "Handling signal: hup");
    if (state_ == State::running) begin_reload("SIGHUP");
  }

  void handle_ttin() {
    log_error(logline::Level::info, "Handling signal: ttin");
    if (state_ != State::running) return;
    if (!may_add_worker(target_workers_)) {
      log_error(logline::Level::warning,
                fmt::format("Not adding a worker on SIGTTIN: {} workers is the most one server runs (a reload "
                            "starts as many again beside them, in a table of {} slots). Run another server for more.",
                            target_workers_, worker::kMaxSlots));
      return;
    }
    ++target_workers_;
  }

  void handle_ttou() {
    log_error(logline::Level::info, "Handling signal: ttou");
    if (state_ != State::running || target_workers_ <= 1) return;
    --target_workers_;
    // The oldest serving worker goes; it finishes what it has, as on TERM.
    pid_t oldest = 0;
    uint64_t oldest_ns = UINT64_MAX;
    for (auto& [pid, child] : workers_)
      if (counts(child.phase) && child.spawned_ns < oldest_ns) oldest = pid, oldest_ns = child.spawned_ns;
    if (oldest) stop_worker(oldest, workers_[oldest], base::monotonic_ns());
  }

  // inotify events for the entry script's folder (--reload). Editors write temporary and backup files
  // and Python writes __pycache__; those are not edits. Several events within the debounce window
  // (an editor's save is often three or four) give one reload.
  void read_file_changes() {
    alignas(struct inotify_event) char buf[8192];
    for (;;) {
      ssize_t n = read(watch_fd_, buf, sizeof buf);
      if (n <= 0) return;
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<struct inotify_event*>(p);
        p += sizeof(struct inotify_event) + ev->len;
        std::string name = ev->len ? std::string(ev->name) : std::string();
        if (ev->mask & IN_Q_OVERFLOW) name = "(many files)";
        if (name.empty() || !is_edit(name)) continue;
        reload_due_ns_ = base::monotonic_ns() + kReloadDebounceNs;
        reload_reason_ = name;
      }
    }
  }

  void maybe_reload(uint64_t now) {
    if (!reload_due_ns_ || now < reload_due_ns_ || reloading()) return;
    reload_due_ns_ = 0;
    begin_reload(fmt::format("a change to {} in {}", reload_reason_, launch_.watch_dir));
  }

  // ---- the table ------------------------------------------------------------------------------------

  // Worker timeouts, workers asking to be replaced, and workers due for replacement after max_requests.
  void check_workers(uint64_t now) {
    for (auto& [pid, child] : workers_) {
      worker::Slot& slot = table_->slots[child.slot];
      SlotView view;
      view.ready = slot.state.load() == worker::SlotState::ready;
      view.run_started_ns = slot.run_started_ns.load();
      view.heartbeat_ns = slot.heartbeat_ns.load();
      view.replace_requested = slot.replace_requested.load() != 0;
      view.requests_served = slot.requests_served.load();
      Verdict verdict = judge(child.phase, view, now, worker_timeout_ns_, child.max_requests);
      switch (verdict.kind) {
        case Verdict::fine: break;
        case Verdict::run_too_long:
        case Verdict::silent:
          slot.timed_out_run_ns.store(view.run_started_ns);  // before the signals (worker.h)
          time_out(pid, child, verdict, now);
          break;
        case Verdict::asked_replacement:
          count_restart(worker::RestartCause::timeout);
          log_error(logline::Level::warning,
                    fmt::format("Worker (pid:{}) asked to be replaced (its run() is stuck in native code, see its "
                                "log above); starting a new worker.",
                                pid));
          child.phase = Phase::stopping;
          child.kill_at_ns = now + graceful_timeout_ns_;
          break;
        case Verdict::due_for_age:
          log_error(logline::Level::info,
                    fmt::format("Worker (pid:{}) has served {} requests (max_requests); replacing it without "
                                "downtime.",
                                pid, view.requests_served));
          if (!reloading()) replacing_since_ns_ = now;
          child.phase = Phase::retiring;
          child.retire_cause = worker::RestartCause::max_requests;
          break;
      }
    }
  }

  // The Python stacks first (faulthandler, SIGUSR1), then the I/O thread answers the stuck client
  // (SIGUSR2), then SIGKILL once both had time; a new worker boots meanwhile.
  void time_out(pid_t pid, Child& child, const Verdict& verdict, uint64_t now) {
    log_error(logline::Level::critical, fmt::format("WORKER TIMEOUT (pid:{})", pid));
    std::string why =
        verdict.kind == Verdict::run_too_long
            ? fmt::format("its run() has been running for {:.1f} s", seconds(verdict.running_ns))
            : fmt::format("its I/O thread has not sent a heartbeat for {:.1f} s", seconds(verdict.silent_ns));
    log_error(logline::Level::critical,
              fmt::format("Worker (pid:{}) timed out: {}, longer than WORKER_TIMEOUT={} s. Its Python stacks follow "
                          "(the stuck line is in the first thread listed); it is then killed and replaced. Raise "
                          "WORKER_TIMEOUT if requests this long are expected.",
                          pid, why, launch_.worker_timeout_s));
    count_restart(worker::RestartCause::timeout);
    kill(pid, worker::kSignalDumpStacks);
    kill(pid, worker::kSignalAnswerTimedOut);
    child.phase = Phase::stopping;
    child.kill_at_ns = now + kKillAfterDumpNs;
  }

  void kill_overdue(uint64_t now) {
    for (auto& [pid, child] : workers_) {
      if (!child.kill_at_ns || now < child.kill_at_ns) continue;
      child.kill_at_ns = 0;
      child.phase = Phase::stopping;
      kill(pid, SIGKILL);
    }
  }

  // ---- starting workers -----------------------------------------------------------------------------

  int live_workers() const {
    int n = 0;
    for (auto& [pid, child] : workers_)
      if (counts(child.phase)) ++n;
    return n;
  }

  bool reloading() const {
    for (auto& [pid, child] : workers_)
      if (child.phase == Phase::retiring) return true;
    return false;
  }

  void spawn_missing_workers(uint64_t now) {
    if (next_spawn_ns_ && now < next_spawn_ns_) return;  // backing off after quick deaths
    next_spawn_ns_ = 0;
    while (live_workers() < target_workers_) {
      if (!spawn_worker(now)) return;
    }
  }

  // Retiring workers stop only when every worker meant to replace them is ready, so a reload or a
  // replacement for age drops nothing: the listeners are shared and never close meanwhile.
  void retire_replaced(uint64_t now) {
    std::vector<Member> members;
    for (auto& [pid, child] : workers_)
      members.push_back({child.phase, table_->slots[child.slot].state.load() == worker::SlotState::ready});
    if (!replacement_ready(members, target_workers_)) return;
    std::string pids;
    for (auto& [pid, child] : workers_) {
      if (child.phase != Phase::retiring) continue;
      pids += (pids.empty() ? "" : ", ") + std::to_string(pid);
      count_restart(child.retire_cause);
      stop_worker(pid, child, now);
    }
    log_error(logline::Level::info,
              fmt::format("New workers are ready; the previous ones ({}) finish their requests and exit.", pids));
  }

  void stop_worker(pid_t pid, Child& child, uint64_t now) {
    child.phase = Phase::stopping;
    child.kill_at_ns = now + graceful_timeout_ns_;
    kill(pid, SIGTERM);
  }

  // A new generation: every worker now serving is replaced once the new ones are ready. Each new
  // worker loads the script afresh, so edits take effect.
  void begin_reload(const std::string& reason) {
    log_error(logline::Level::info, fmt::format("Reloading because of {}: starting {} new worker(s); the running "
                                                "ones keep serving until the new ones are ready.",
                                                reason, target_workers_));
    table_->boot_failure_reported.store(worker::kBootReportNone);  // a failing new generation must show its error
    replacing_since_ns_ = base::monotonic_ns();
    next_spawn_ns_ = 0;
    backoff_.reset();
    for (auto& [pid, child] : workers_) {
      if (child.phase == Phase::stopping) continue;
      child.phase = Phase::retiring;
      child.retire_cause = worker::RestartCause::reload;
    }
  }

  bool spawn_worker(uint64_t now) {
    int slot = free_slot();
    if (slot < 0) {
      // Workers on their way out still hold slots: wait for them, saying so once, not every pass.
      if (!slot_shortage_logged_)
        log_error(logline::Level::error,
                  fmt::format("No free worker slot (at most {} workers); not starting another worker until one "
                              "exits.",
                              worker::kMaxSlots));
      slot_shortage_logged_ = true;
      return false;
    }
    slot_shortage_logged_ = false;
    worker::Slot& s = table_->slots[slot];
    s.state.store(worker::SlotState::booting);
    s.pid.store(0);
    s.run_started_ns.store(0);
    s.requests_served.store(0);
    s.replace_requested.store(0);
    s.heartbeat_ns.store(now);
    // Signals wait until the child has put back the default handlers (worker::run unblocks them): one
    // that reached the child before that ran the arbiter's handler there, which wrote it into the
    // arbiter's pipe, so a TERM sent to a worker just forked was taken by the arbiter and the worker
    // lived on until the graceful timeout.
    sigset_t all, previous;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &previous);
    pid_t pid = fork();
    if (pid != 0) sigprocmask(SIG_SETMASK, &previous, nullptr);
    if (pid < 0) {
      s.state.store(worker::SlotState::empty);
      log_error(logline::Level::error, fmt::format("Cannot fork a worker: {}", strerror(errno)));
      return false;
    }
    if (pid == 0) {
      close(signal_pipe[0]);
      close(signal_pipe[1]);
      if (watch_fd_ >= 0) close(watch_fd_);
      worker::Options options;
      options.settings = launch_.worker;
      options.listen_fds = listeners_;
      options.metrics_fd = metrics_fd_;
      options.handoff_fds[0] = handoff_fds_[0];
      options.handoff_fds[1] = handoff_fds_[1];
      options.table = table_;
      options.slot = slot;
      options.interpreter = program_.interpreter;
      options.default_interpreter = program_.default_interpreter;
      options.package_dir = program_.package_dir;
      worker::run(options);
    }
    Child child;
    child.slot = slot;
    child.spawned_ns = base::monotonic_ns();  // not `now`: a reload begun in this pass must count it as new
    if (launch_.max_requests > 0) {
      // Jitter spreads the replacements, so workers started together are not all replaced together.
      std::uniform_int_distribution<int> jitter(0, launch_.max_requests_jitter);
      child.max_requests = static_cast<uint64_t>(launch_.max_requests) + static_cast<uint64_t>(jitter(random_));
    }
    workers_[pid] = child;
    log_error(logline::Level::info, fmt::format("Booting worker with pid: {}", pid));
    return true;
  }

  int free_slot() const {
    for (int i = 0; i < worker::kMaxSlots; ++i)
      if (table_->slots[i].state.load() == worker::SlotState::empty && !slot_taken(i)) return i;
    return -1;
  }

  bool slot_taken(int slot) const {
    for (auto& [pid, child] : workers_)
      if (child.slot == slot) return true;
    return false;
  }

  // ---- deaths ---------------------------------------------------------------------------------------

  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      auto it = workers_.find(pid);
      if (it == workers_.end()) continue;
      Child child = it->second;
      worker::Slot& slot = table_->slots[child.slot];
      bool was_booting = slot.state.load() == worker::SlotState::booting;
      bool asked_replacement = slot.replace_requested.load() != 0;
      slot.state.store(worker::SlotState::empty);
      workers_.erase(it);
      uint64_t now = base::monotonic_ns();

      int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      switch (classify_death(state_ == State::running, child.phase, asked_replacement, was_booting, reloading(),
                             exit_code)) {
        case Death::expected: break;
        case Death::asked_replacement: count_restart(worker::RestartCause::timeout); break;  // before check_workers()
        case Death::old_generation:
          count_restart(worker::RestartCause::crash);
          log_death(pid, status);
          break;
        case Death::failed_reload: replacement_failed(pid, status); break;
        case Death::boot_failure:
          log_error(logline::Level::error, fmt::format("Worker (pid:{}) exited with code 3", pid));
          halt_after_boot_failure();
          return;
        case Death::crash:
          count_restart(worker::RestartCause::crash);
          log_death(pid, status);
          back_off(pid, now - child.spawned_ns, !was_booting, now);
          break;
      }
    }
  }

  void log_death(pid_t pid, int status) {
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      if (sig == SIGKILL)
        log_error(logline::Level::error, fmt::format("Worker (pid:{}) was sent SIGKILL! Perhaps out of memory?", pid));
      else if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT)
        log_error(logline::Level::warning,
                  fmt::format("Worker (pid:{}) was sent {}! The Python stack at the crash is in the log above "
                              "(\"Fatal Python error\"); a new worker replaces it.",
                              pid, describe_signal(sig)));
      else
        log_error(logline::Level::warning,
                  fmt::format("Worker (pid:{}) was sent {}! Something outside the server stopped it; a new worker "
                              "replaces it.",
                              pid, describe_signal(sig)));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      log_error(logline::Level::error, fmt::format("Worker (pid:{}) exited with code {}", pid, WEXITSTATUS(status)));
    } else {
      log_error(logline::Level::warning, fmt::format("Worker (pid:{}) exited unexpectedly; a new worker replaces it.",
                                                     pid));
    }
  }

  // After a quick death before ready the next start waits; a worker that was ready is replaced at
  // once (decide.h, Backoff). The log says which, so that nobody reads a request crash as a boot loop.
  void back_off(pid_t pid, uint64_t lifetime, bool was_ready, uint64_t now) {
    uint64_t delay = backoff_.after_death(lifetime, was_ready, now);
    if (was_ready) {
      log_error(logline::Level::warning,
                fmt::format("Worker (pid:{}) died while serving, {:.1f} s after it was started: a new worker "
                            "replaces it at once (the script loads; the log above says what ended this one).",
                            pid, seconds(lifetime)));
      return;
    }
    if (!delay) return;
    next_spawn_ns_ = now + delay;
    log_error(logline::Level::warning,
              fmt::format("Worker (pid:{}) died {:.1f} s after it was started, before it was ready (while loading "
                          "the script or running init()); starting a new one in {:.1f} s. Workers that keep dying "
                          "before they are ready are restarted with a doubling delay (up to {:.0f} s); the log "
                          "above says why this one died.",
                          pid, seconds(lifetime), seconds(delay), seconds(kMaxBackoffNs)));
  }

  // A worker of a new generation (reload, or a replacement for age) died while booting: the script
  // on disk is broken now. The running workers keep serving; the rest of the new generation goes,
  // including workers of it that are ready already (they may have read the file before the bad edit).
  void replacement_failed(pid_t pid, int status) {
    std::string how = WIFEXITED(status) ? fmt::format("exited with code {}", WEXITSTATUS(status))
                                        : fmt::format("was killed by {}", describe_signal(WTERMSIG(status)));
    log_error(logline::Level::error,
              fmt::format("Reload failed: new worker (pid:{}) {} while loading the script or running init(); its "
                          "error is in the log above. The previous workers keep serving. Fix the script, then "
                          "reload again (SIGHUP, or save the file when --reload is on).",
                          pid, how));
    for (auto& [other, child] : workers_) {
      bool booting = table_->slots[child.slot].state.load() == worker::SlotState::booting;
      switch (on_failed_reload(child.phase, booting, child.spawned_ns, replacing_since_ns_)) {
        case OnFailedReload::nothing: break;
        case OnFailedReload::keep: child.phase = Phase::kept; break;
        case OnFailedReload::kill:
          child.phase = Phase::stopping;
          kill(other, SIGKILL);
          break;
        case OnFailedReload::stop: stop_worker(other, child, base::monotonic_ns()); break;
      }
    }
  }

  void halt_after_boot_failure() {
    // The other workers would fail the same way: stop them without waiting for their init().
    for (auto& [pid, child] : workers_) kill(pid, SIGKILL);
    while (!workers_.empty()) {
      int status;
      pid_t pid = waitpid(-1, &status, 0);
      if (pid < 0 && errno != EINTR) break;
      workers_.erase(pid);
    }
    log_error(logline::Level::info, "Shutting down: Master");
    log_error(logline::Level::info, "Reason: Worker failed to boot.");
    exit_code_ = worker::kExitBootFailed;
  }

  // ---- stopping -------------------------------------------------------------------------------------

  void begin_stop(int worker_signal, uint64_t timeout_ns) {
    uint64_t now = base::monotonic_ns();
    uint64_t deadline = now + timeout_ns;
    if (state_ == State::stopping && worker_signal == SIGTERM) return;  // a second TERM changes nothing
    state_ = State::stopping;
    table_->stopping.store(1);  // before the signals: a worker reads it when it begins to drain
    for (int fd : listeners_) close(fd);
    listeners_.clear();
    if (metrics_fd_ >= 0) close(metrics_fd_);  // the workers keep theirs open while they drain
    metrics_fd_ = -1;
    reload_due_ns_ = 0;
    for (auto& [pid, child] : workers_) {
      // A worker still in init() has the default handlers: QUIT would dump core, TERM just ends it.
      bool booting = table_->slots[child.slot].state.load() == worker::SlotState::booting;
      kill(pid, booting ? SIGTERM : worker_signal);
      if (!child.kill_at_ns || deadline < child.kill_at_ns) child.kill_at_ns = deadline;
    }
  }

  int finish() {
    log_error(logline::Level::info, "Shutting down: Master");
    return 0;
  }

  const Launch& launch_;
  const WorkerProgram& program_;
  std::vector<int> listeners_;
  int metrics_fd_;  // the metrics listener, or -1; handed to every worker, apart from listeners_
  // The workers' hand-off queue (worker::Options::handoff_fds), or -1s. Held open here for the server's
  // life, so what is queued in it outlives any one worker.
  int handoff_fds_[2];
  worker::Table* table_;
  int target_workers_;
  int watch_fd_;
  uint64_t worker_timeout_ns_;
  uint64_t graceful_timeout_ns_;
  std::mt19937 random_;
  std::map<pid_t, Child> workers_;
  State state_ = State::running;
  int exit_code_ = -1;
  uint64_t next_spawn_ns_ = 0;        // non-zero: no new worker before this (back-off)
  Backoff backoff_;
  bool slot_shortage_logged_ = false;  // "No free worker slot" said; said again after a start succeeds
  uint64_t reload_due_ns_ = 0;        // non-zero: reload at this time (debounced file change)
  uint64_t replacing_since_ns_ = 0;   // workers started since then belong to the new generation
  std::string reload_reason_;
};

void install_signal_handlers() {
  if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU}) sigaction(sig, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int serve(const Launch& launch, const WorkerProgram& program) {
  std::vector<int> listeners;
  int metrics_fd = -1;
  if (!bind_listeners(launch, listeners, metrics_fd)) return 1;

  // The supervision table lives in one shared page set before the first fork (docs/architecture.md "Processes").
  void* page = mmap(nullptr, sizeof(worker::Table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    log_error(logline::Level::critical, fmt::format("Cannot map the worker table: {}", strerror(errno)));
    return 1;
  }
  auto* table = new (page) worker::Table();

  // A queue of messages the workers share (whole messages, each read by one reader). Without it the
  // workers still serve; each keeps the requests it reads.
  int handoff_fds[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, handoff_fds) != 0)
    log_error(logline::Level::warning,
              fmt::format("Cannot make the workers' hand-off queue ({}); a request that arrives on a busy "
                          "worker's connection waits for that worker.",
                          strerror(errno)));

  install_signal_handlers();
  std::string addresses;
  for (int port : {launch.separate_health && launch.health_port != launch.port ? launch.health_port : -1, launch.port})
    if (port > 0) addresses += (addresses.empty() ? "" : ",") + fmt::format("http://{}:{}", listen_host(launch), port);
  log_error(logline::Level::info, fmt::format("Starting azmlinfsrv {}", AZMLINFSRV_VERSION));
  log_error(logline::Level::info, fmt::format("Listening at: {} ({})", addresses, getpid()));
  if (metrics_fd >= 0)
    log_error(logline::Level::info, fmt::format("Metrics listener at: {}:{}", listen_host(launch), launch.metrics_port));
  log_error(logline::Level::info, "Using worker: prefork (libuv I/O thread + embedded Python)");
  Arbiter arbiter(launch, program, std::move(listeners), metrics_fd, handoff_fds, table, watch_folder(launch));
  return arbiter.run();
}

}  // namespace arbiter
