// The last words of a worker that dies of a fatal signal inside run(): the client of the running
// request gets a JSON 500 naming the signal instead of a reset connection (docs/architecture.md
// "Crashes and the order of the fatal-signal handlers"). This handler is installed over faulthandler's: it answers the client first (a few
// syscalls), then hands the signal on to faulthandler, which writes the Python stack and lets the
// signal end the process for the arbiter to see. Answering first keeps the client's answer independent
// of how long, or whether, the stack dump takes.
//
// Everything the handler touches is rendered before the crash, or read from the running Job, which
// the Python thread keeps alive while run() works; the handler itself only calls sendmsg and raise.
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "jobs.h"
#include "settings.h"

namespace worker {

namespace {

struct Rendered {
  std::string head;  // status line to the last header that is the same for every request
  std::string body;
};

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr int kMaxSignal = 32;

JobQueue* crash_queue = nullptr;
Rendered* rendered[kMaxSignal] = {};
struct sigaction previous[kMaxSignal];  // faulthandler's handlers, run after ours
// This worker's copies of the listening sockets: closed first, so that while faulthandler writes the
// stacks the dying worker's I/O thread accepts no connection it could never answer.
int listeners[8];
int listener_count = 0;
std::string* server_version_header = nullptr;  // "x-ms-server-version: v\r\n" or empty

const char* describe(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (segmentation fault)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGFPE: return "SIGFPE (arithmetic error)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGABRT: return "SIGABRT (abort)";
    default: return "a fatal signal";
  }
}

Rendered* render(int sig) {
  auto* r = new Rendered;
  r->body = http::json_message(std::string("The worker crashed with ") + describe(sig) +
                               " in native code while run() handled this request; a new worker replaces it. The "
                               "server log shows the Python stack at the crash.");
  // No Date header: formatting time is not async-signal-safe, and HTTP allows its absence.
  http::begin_head(r->head, {.status = 500,
                             .reason = http::reason_phrase_upper(500),
                             .connection = http::Head::Connection::close,
                             .date = false,
                             .content_type = "application/json",
                             .content_length = r->body.size()});
  http::add_header(r->head, "x-ms-run-function-failed", "True");
  return r;
}

void add(struct iovec* iov, int& n, const char* data, size_t len) {
  if (!len) return;
  iov[n].iov_base = const_cast<char*>(data);
  iov[n].iov_len = len;
  ++n;
}

void add(struct iovec* iov, int& n, const std::string& s) { add(iov, n, s.data(), s.size()); }

void on_fatal_signal(int sig) {
  for (int i = 0; i < listener_count; ++i) close(listeners[i]);
  listener_count = 0;
  Job* job = crash_queue ? crash_queue->running.load() : nullptr;
  Rendered* r = sig > 0 && sig < kMaxSignal ? rendered[sig] : nullptr;
  if (job && r && job->fd >= 0 && !job->abandoned.load()) {
    const http::RequestIds& ids = job->ids;
    struct iovec iov[16];
    int n = 0;
    add(iov, n, r->head);
    add(iov, n, *server_version_header);
    static const char kRequestId[] = "x-request-id: ", kLegacyId[] = "x-ms-request-id: ",
                      kClientId[] = "x-ms-client-request-id: ", kEol[] = "\r\n";
    if (!ids.request_id.empty()) {
      add(iov, n, kRequestId, sizeof kRequestId - 1);
      add(iov, n, ids.request_id);
      add(iov, n, kEol, 2);
    }
    if (!ids.legacy_id.empty()) {
      add(iov, n, kLegacyId, sizeof kLegacyId - 1);
      add(iov, n, ids.legacy_id);
      add(iov, n, kEol, 2);
    }
    if (!ids.client_id.empty()) {
      add(iov, n, kClientId, sizeof kClientId - 1);
      add(iov, n, ids.client_id);
      add(iov, n, kEol, 2);
    }
    add(iov, n, kEol, 2);
    add(iov, n, r->body);
    struct msghdr msg {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    (void)!sendmsg(job->fd, &msg, MSG_NOSIGNAL);
    // FIN after the answer, so the client reads it before the kernel resets the dead process's socket.
    shutdown(job->fd, SHUT_WR);
  }
  // On to faulthandler (NODEFER: the raise is delivered at once); it restores the default action and
  // raises again, which ends the process with this signal.
  sigaction(sig, &previous[sig], nullptr);
  raise(sig);
}

}  // namespace

namespace {

// The stack dump (SIGUSR1: WORKER_TIMEOUT, or run() stuck in native code) as one block in the log.
// faulthandler writes it to stderr in many small writes, which other threads' and processes' lines
// cut into, once in the middle of a line. Ours runs in its place: stderr becomes a memory file while
// faulthandler writes, then the dump goes out in as few writes as the buffer allows.
struct sigaction faulthandler_dump;
int dump_file = -1;
char dump_copy[1024 * 1024];  // a dump of 100 threads 100 frames deep fits, mostly

void on_dump_stacks(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  int stderr_copy = dup(STDERR_FILENO);
  if (stderr_copy < 0 || ftruncate(dump_file, 0) != 0 || lseek(dump_file, 0, SEEK_SET) != 0 ||
      dup2(dump_file, STDERR_FILENO) < 0) {
    if (stderr_copy >= 0) close(stderr_copy);
    stderr_copy = -1;  // dump straight to stderr, as faulthandler would
  }
  if (faulthandler_dump.sa_flags & SA_SIGINFO) faulthandler_dump.sa_sigaction(sig, info, context);
  else if (faulthandler_dump.sa_handler != SIG_DFL && faulthandler_dump.sa_handler != SIG_IGN)
    faulthandler_dump.sa_handler(sig);
  if (stderr_copy >= 0) {
    dup2(stderr_copy, STDERR_FILENO);
    close(stderr_copy);
    off_t at = 0;
    for (ssize_t n; (n = pread(dump_file, dump_copy, sizeof dump_copy, at)) > 0; at += n) {
      if (n == static_cast<ssize_t>(sizeof dump_copy)) {  // more follows: end this write at a line's end
        ssize_t line_end = n;
        while (line_end > 0 && dump_copy[line_end - 1] != '\n') --line_end;
        if (line_end > 0) n = line_end;
      }
      for (ssize_t sent = 0, w; sent < n; sent += w)
        if ((w = write(STDERR_FILENO, dump_copy + sent, static_cast<size_t>(n - sent))) <= 0) break;
    }
  }
  errno = saved_errno;
}

}  // namespace

void gather_stack_dumps() {
  dump_file = memfd_create("azmlinfsrv-stack-dump", MFD_CLOEXEC);
  if (dump_file < 0) return;  // faulthandler writes straight to stderr
  struct sigaction sa {};
  sa.sa_sigaction = on_dump_stacks;
  sigemptyset(&sa.sa_mask);
  if (sigaction(kSignalDumpStacks, nullptr, &faulthandler_dump) != 0) return;
  // faulthandler's own flags (SA_RESTART, SA_ONSTACK), so blocking calls react as they did.
  sa.sa_flags = (faulthandler_dump.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
  sigaction(kSignalDumpStacks, &sa, nullptr);
}

void forget_crash_responder() {
  if (!crash_queue) return;
  for (int sig : kFatalSignals) sigaction(sig, &previous[sig], nullptr);
  crash_queue = nullptr;
}

void install_crash_responder(JobQueue& queue, const std::vector<int>& listen_fds) {
  crash_queue = &queue;
  for (int fd : listen_fds)
    if (listener_count < static_cast<int>(sizeof listeners / sizeof listeners[0])) listeners[listener_count++] = fd;
  server_version_header = new std::string();
  if (!config().server_version.empty())
    http::add_header(*server_version_header, "x-ms-server-version", config().server_version);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  // NODEFER: the raise() at the end reaches the next handler at once. ONSTACK: a stack overflow still
  // finds a stack (faulthandler installed the alternate one).
  sa.sa_flags = SA_NODEFER | SA_ONSTACK;
  for (int sig : kFatalSignals) {
    rendered[sig] = render(sig);
    sigaction(sig, &sa, &previous[sig]);
  }
}

}  // namespace worker
