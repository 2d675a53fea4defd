// The arbiter: the whole process lifecycle as one small loop, one handler per signal (after gunicorn's
// arbiter.py). Signal handlers only queue the signal on a self-pipe; everything happens in the loop.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "../log/log.h"
#include "../worker/worker.h"
#include "arbiter.h"

namespace arbiter {

namespace {

constexpr int kListenBacklog = 2048;
constexpr int kBindAttempts = 5;
constexpr int kPollMs = 250;
constexpr uint64_t kGracefulTimeoutNs = 30ull * 1000000000ull;
constexpr uint64_t kFastStopTimeoutNs = 2ull * 1000000000ull;

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

// Binds 0.0.0.0:port, retrying while the port is busy as gunicorn does (CONTRACT.md 2.1).
int bind_listener(int port) {
  for (int attempt = 1;; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      log_error(logline::Level::error, fmt::format("Cannot create a socket for port {}: {}", port, strerror(errno)));
      return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0 && listen(fd, kListenBacklog) == 0) {
      // Workers inherit it across fork; CLOEXEC only keeps it from programs a script runs.
      return fd;
    }
    int error = errno;
    close(fd);
    if (error != EADDRINUSE) {
      log_error(logline::Level::error,
                fmt::format("Can't connect to ('0.0.0.0', {}): {}. Choose another port with --port.", port,
                            strerror(error)));
      return -1;
    }
    log_error(logline::Level::error, fmt::format("Connection in use: ('0.0.0.0', {})", port));
    if (attempt == kBindAttempts) {
      log_error(logline::Level::error,
                fmt::format("Can't connect to ('0.0.0.0', {}): the port is in use by another process. Stop that "
                            "process or choose another port with --port.",
                            port));
      return -1;
    }
    log_error(logline::Level::error, "Retrying in 1 second.");
    sleep(1);
  }
}

const char* signal_name(int signum) {
  switch (signum) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return nullptr;
  }
}

class Arbiter {
 public:
  Arbiter(const Launch& launch, const WorkerProgram& program, std::vector<int> listeners, worker::Table* table)
      : launch_(launch), program_(program), listeners_(std::move(listeners)), table_(table),
        target_workers_(launch.worker_count) {}

  int run() {
    for (;;) {
      if (state_ == State::running) spawn_missing_workers();
      wait_for_signal(kPollMs);
      reap();
      if (exit_code_ >= 0) return exit_code_;
      if (state_ != State::running) {
        if (workers_.empty()) return finish();
        if (worker::monotonic_ns() > stop_deadline_ns_) kill_all(SIGKILL);
      }
    }
  }

 private:
  enum class State { running, stopping };

  struct Child {
    int slot;
  };

  void wait_for_signal(int timeout_ms) {
    struct pollfd p = {signal_pipe[0], POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return;
    char signals[64];
    ssize_t n = read(signal_pipe[0], signals, sizeof signals);
    for (ssize_t i = 0; i < n; ++i) handle(signals[i]);
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
    begin_stop(SIGTERM, kGracefulTimeoutNs);
  }

  void handle_quit(int signum) {
    log_error(logline::Level::info, signum == SIGINT ? "Handling signal: int" : "Handling signal: quit");
    begin_stop(SIGQUIT, kFastStopTimeoutNs);
  }

  // Reload: a new generation boots while the old one serves; the old one then stops gracefully.
  void handle_hup() {
    log_error(logline::Level::info, "Handling signal: hup");
    if (state_ != State::running) return;
    for (auto& [pid, child] : workers_) retiring_.push_back(pid);
    for (int i = 0; i < target_workers_; ++i) spawn_worker();
  }

  void handle_ttin() {
    log_error(logline::Level::info, "Handling signal: ttin");
    ++target_workers_;
  }

  void handle_ttou() {
    log_error(logline::Level::info, "Handling signal: ttou");
    if (target_workers_ <= 1) return;
    --target_workers_;
    if (workers_.empty()) return;
    pid_t pid = workers_.begin()->first;
    retired_.push_back(pid);
    kill(pid, SIGTERM);
  }

  void begin_stop(int worker_signal, uint64_t timeout_ns) {
    uint64_t deadline = worker::monotonic_ns() + timeout_ns;
    if (state_ == State::stopping && deadline >= stop_deadline_ns_ && worker_signal == SIGTERM) return;
    state_ = State::stopping;
    stop_deadline_ns_ = deadline;
    for (int fd : listeners_) close(fd);
    listeners_.clear();
    kill_all(worker_signal);
  }

  void kill_all(int signum) {
    for (auto& [pid, child] : workers_) kill(pid, signum);
  }

  int finish() {
    log_error(logline::Level::info, "Shutting down: Master");
    return 0;
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

  int live_workers() const { return static_cast<int>(workers_.size() - retiring_.size()); }

  void spawn_missing_workers() {
    while (live_workers() < target_workers_) {
      if (!spawn_worker()) return;
    }
    retire_old_generation();
  }

  // The old generation stops only when every new worker is ready, so a reload drops nothing.
  void retire_old_generation() {
    if (retiring_.empty()) return;
    for (auto& [pid, child] : workers_) {
      if (std::find(retiring_.begin(), retiring_.end(), pid) != retiring_.end()) continue;
      if (table_->slots[child.slot].state.load() != worker::SlotState::ready) return;
    }
    for (pid_t pid : retiring_) kill(pid, SIGTERM);
    retired_.insert(retired_.end(), retiring_.begin(), retiring_.end());
    retiring_.clear();
  }

  bool spawn_worker() {
    int slot = free_slot();
    if (slot < 0) {
      log_error(logline::Level::error, "No free worker slot; not starting another worker.");
      return false;
    }
    worker::Slot& s = table_->slots[slot];
    s.state.store(worker::SlotState::booting);
    s.pid.store(0);
    pid_t pid = fork();
    if (pid < 0) {
      s.state.store(worker::SlotState::empty);
      log_error(logline::Level::error, fmt::format("Cannot fork a worker: {}", strerror(errno)));
      return false;
    }
    if (pid == 0) {
      close(signal_pipe[0]);
      close(signal_pipe[1]);
      worker::Options options;
      options.listen_fds = listeners_;
      options.table = table_;
      options.slot = slot;
      options.interpreter = program_.interpreter;
      options.default_interpreter = program_.default_interpreter;
      options.package_dir = program_.package_dir;
      worker::run(options);
    }
    workers_[pid] = Child{slot};
    log_error(logline::Level::info, fmt::format("Booting worker with pid: {}", pid));
    return true;
  }

  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      auto it = workers_.find(pid);
      if (it == workers_.end()) continue;
      worker::Slot& slot = table_->slots[it->second.slot];
      bool was_booting = slot.state.load() == worker::SlotState::booting;
      slot.state.store(worker::SlotState::empty);
      workers_.erase(it);
      retiring_.erase(std::remove(retiring_.begin(), retiring_.end(), pid), retiring_.end());
      bool expected = std::find(retired_.begin(), retired_.end(), pid) != retired_.end();
      retired_.erase(std::remove(retired_.begin(), retired_.end(), pid), retired_.end());
      if (WIFEXITED(status) && WEXITSTATUS(status) == worker::kExitBootFailed && was_booting) {
        log_error(logline::Level::error, fmt::format("Worker (pid:{}) exited with code 3", pid));
        halt_after_boot_failure();
        return;
      }
      if (state_ == State::stopping || expected) continue;
      if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char* name = signal_name(sig);
        std::string shown = name ? name : fmt::format("signal {}", sig);
        log_error(sig == SIGKILL ? logline::Level::error : logline::Level::warning,
                  sig == SIGKILL ? fmt::format("Worker (pid:{}) was sent {}! Perhaps out of memory?", pid, shown)
                                 : fmt::format("Worker (pid:{}) was sent {}!", pid, shown));
      } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        log_error(logline::Level::error, fmt::format("Worker (pid:{}) exited with code {}", pid, WEXITSTATUS(status)));
      }
    }
  }

  void halt_after_boot_failure() {
    // The other workers would fail the same way: stop them without waiting for their init().
    kill_all(SIGKILL);
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

  const Launch& launch_;
  const WorkerProgram& program_;
  std::vector<int> listeners_;
  worker::Table* table_;
  int target_workers_;
  std::map<pid_t, Child> workers_;
  std::vector<pid_t> retiring_;  // old generation during a reload, still serving
  std::vector<pid_t> retired_;   // told to stop; their exit is expected
  State state_ = State::running;
  uint64_t stop_deadline_ns_ = 0;
  int exit_code_ = -1;
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
  if (launch.separate_health && launch.health_port != launch.port) {
    int health = bind_listener(launch.health_port);
    if (health < 0) return 1;
    listeners.push_back(health);
  }
  int main_fd = bind_listener(launch.port);
  if (main_fd < 0) return 1;
  listeners.push_back(main_fd);

  // The supervision table lives in one shared page set before the first fork (DESIGN.md).
  void* page = mmap(nullptr, sizeof(worker::Table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    log_error(logline::Level::critical, fmt::format("Cannot map the worker table: {}", strerror(errno)));
    return 1;
  }
  auto* table = new (page) worker::Table();

  install_signal_handlers();
  std::string addresses;
  for (int port : {launch.separate_health && launch.health_port != launch.port ? launch.health_port : -1, launch.port})
    if (port > 0) addresses += (addresses.empty() ? "" : ",") + fmt::format("http://0.0.0.0:{}", port);
  log_error(logline::Level::info, fmt::format("Starting azmlinfsrv {}", AZMLINFSRV_VERSION));
  log_error(logline::Level::info, fmt::format("Listening at: {} ({})", addresses, getpid()));
  log_error(logline::Level::info, "Using worker: prefork (libuv I/O thread + embedded Python)");
  Arbiter arbiter(launch, program, std::move(listeners), table);
  return arbiter.run();
}

}  // namespace arbiter
