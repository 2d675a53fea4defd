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
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "../base/base.h"
#include "capture.h"
#include "jobs.h"
#include "settings.h"

namespace worker {

namespace {

struct Rendered {
  std::string head;  // status line to the last header that is the same for every request
  std::string body;
  // --dev: the answer carries the Python stacks, so its length is known only in the handler. The head
  // without Content-Length, and the body around the stacks: prefix, escaped stacks, "\"}}".
  std::string dev_head;
  std::string dev_body_prefix;
};

bool dev_answers = false;  // --dev: the crash answer carries the stacks (Settings::dev)
std::atomic<const PreparedCapture*> armed_capture{nullptr};  // --capture: run()'s request, rendered

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
  if (dev_answers) {
    http::begin_head(r->dev_head, {.status = 500,
                                   .reason = http::reason_phrase_upper(500),
                                   .connection = http::Head::Connection::close,
                                   .date = false,
                                   .content_type = "application/json",
                                   .content_length = std::nullopt});
    http::add_header(r->dev_head, "x-ms-run-function-failed", "True");
    r->dev_body_prefix = r->body;
    r->dev_body_prefix.pop_back();
    r->dev_body_prefix += ", \"error\": {\"type\": \"";
    base::append_json_string(r->dev_body_prefix, base::signal_name(sig) ? base::signal_name(sig) : "signal",
                             base::JsonText::ensure_ascii);
    r->dev_body_prefix += "\", \"stack\": \"";
  }
  return r;
}

// --dev's crash answer, built inside the fatal-signal handler: static buffers, no allocation.
char stack_text[256 * 1024];
char stack_json[6 * sizeof stack_text + 64];
char dev_length_header[64];

// JSON string content of text (escaped as json.dumps does, non-ASCII bytes kept: the dump is ASCII).
size_t escape_json(const char* text, size_t n, char* out, size_t cap) {
  static const char kHex[] = "0123456789abcdef";
  size_t k = 0;
  for (size_t i = 0; i < n && k + 6 < cap; ++i) {
    unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch == '"' || ch == '\\') {
      out[k++] = '\\';
      out[k++] = static_cast<char>(ch);
    } else if (ch == '\n') {
      out[k++] = '\\';
      out[k++] = 'n';
    } else if (ch < 0x20 || ch >= 0x7f) {
      const char esc[] = {'\\', 'u', '0', '0', kHex[ch >> 4], kHex[ch & 15]};
      for (char e : esc) out[k++] = e;
    } else {
      out[k++] = static_cast<char>(ch);
    }
  }
  return k;
}

size_t format_length_header(size_t length) {
  static const char kName[] = "Content-Length: ";
  size_t k = 0;
  for (const char* p = kName; *p; ++p) dev_length_header[k++] = *p;
  char digits[24];
  size_t d = 0;
  do digits[d++] = static_cast<char>('0' + length % 10); while ((length /= 10) > 0);
  while (d > 0) dev_length_header[k++] = digits[--d];
  dev_length_header[k++] = '\r';
  dev_length_header[k++] = '\n';
  return k;
}

size_t dump_stacks_into(char* out, size_t cap);

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
  const PreparedCapture* capture = armed_capture.load();
  size_t stack_json_size = 0;
  if (dev_answers || capture) {
    size_t dumped = dump_stacks_into(stack_text, sizeof stack_text);
    stack_json_size = escape_json(stack_text, dumped, stack_json, sizeof stack_json);
  }
  if (job && r && job->fd >= 0 && !job->abandoned.load()) {
    const http::RequestIds& ids = job->ids;
    struct iovec iov[20];
    int n = 0;
    static const char kBodyEnd[] = "\"}}";
    if (dev_answers) {
      add(iov, n, r->dev_head);
      add(iov, n, dev_length_header,
          format_length_header(r->dev_body_prefix.size() + stack_json_size + sizeof kBodyEnd - 1));
    } else {
      add(iov, n, r->head);
    }
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
    if (dev_answers) {
      add(iov, n, r->dev_body_prefix);
      add(iov, n, stack_json, stack_json_size);
      add(iov, n, kBodyEnd, sizeof kBodyEnd - 1);
    } else {
      add(iov, n, r->body);
    }
    struct msghdr msg {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    (void)!sendmsg(job->fd, &msg, MSG_NOSIGNAL);
    // FIN after the answer, so the client reads it before the kernel resets the dead process's socket.
    shutdown(job->fd, SHUT_WR);
  }
  if (capture) write_prepared_capture(*capture, stack_json, stack_json_size);
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

// For --dev's timeout answers, which carry the dump the arbiter asked for: whether one is being
// written now, and when the last was done (CLOCK_MONOTONIC).
std::atomic<bool> dumping{false};
std::atomic<uint64_t> last_dump_done_ns{0};

// Runs faulthandler's dump with stderr pointed at dump_file; true when the dump is there (else it went
// straight to stderr, as faulthandler would write it).
bool dump_to_file(siginfo_t* info, void* context) {
  int stderr_copy = dump_file >= 0 ? dup(STDERR_FILENO) : -1;
  if (stderr_copy < 0 || ftruncate(dump_file, 0) != 0 || lseek(dump_file, 0, SEEK_SET) != 0 ||
      dup2(dump_file, STDERR_FILENO) < 0) {
    if (stderr_copy >= 0) close(stderr_copy);
    stderr_copy = -1;
  }
  if (faulthandler_dump.sa_flags & SA_SIGINFO) faulthandler_dump.sa_sigaction(kSignalDumpStacks, info, context);
  else if (faulthandler_dump.sa_handler != SIG_DFL && faulthandler_dump.sa_handler != SIG_IGN)
    faulthandler_dump.sa_handler(kSignalDumpStacks);
  if (stderr_copy < 0) return false;
  dup2(stderr_copy, STDERR_FILENO);
  close(stderr_copy);
  return true;
}

// The Python stacks now, into out (async-signal-safe): the fatal-signal handler's, for --dev's answer.
size_t dump_stacks_into(char* out, size_t cap) {
  if (dump_file < 0 || !dump_to_file(nullptr, nullptr)) return 0;  // faulthandler's fatal dump still follows
  ssize_t n = pread(dump_file, out, cap, 0);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void copy_dump_to_stderr() {
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

void on_dump_stacks(int, siginfo_t* info, void* context) {
  int saved_errno = errno;
  dumping.store(true);
  if (dump_to_file(info, context)) copy_dump_to_stderr();
  last_dump_done_ns.store(base::monotonic_ns());
  dumping.store(false);
  errno = saved_errno;
}

}  // namespace

namespace {

std::string read_dump_file() {
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = pread(dump_file, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0;)
    text.append(buf, static_cast<size_t>(n));
  return text;
}

}  // namespace

std::string dump_stacks_now() {
  if (dump_file < 0 || dumping.exchange(true)) return {};
  std::string text;
  if (dump_to_file(nullptr, nullptr)) {
    copy_dump_to_stderr();
    text = read_dump_file();
  }
  last_dump_done_ns.store(base::monotonic_ns());
  dumping.store(false);
  return text;
}

std::string wait_for_stack_dump(uint64_t since_ns, uint64_t timeout_ns) {
  if (dump_file < 0) return {};
  uint64_t give_up = base::monotonic_ns() + timeout_ns;
  const timespec pause{0, 5'000'000};
  while (dumping.load() || last_dump_done_ns.load() < since_ns) {
    if (base::monotonic_ns() >= give_up) return {};
    nanosleep(&pause, nullptr);
  }
  return read_dump_file();
}

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

void arm_crash_capture(const PreparedCapture* capture) { armed_capture.store(capture); }

void forget_crash_responder() {
  if (!crash_queue) return;
  for (int sig : kFatalSignals) sigaction(sig, &previous[sig], nullptr);
  crash_queue = nullptr;
}

void install_crash_responder(JobQueue& queue, const std::vector<int>& listen_fds) {
  crash_queue = &queue;
  dev_answers = config().settings.dev;
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
