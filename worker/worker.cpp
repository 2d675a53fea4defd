// The worker's main thread: boot Python, start the I/O thread, then run score jobs one at a time.
#include "worker.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <initializer_list>

#include <fmt/format.h>

#include "../base/base.h"
#include "../log/log.h"
#include "capture.h"
#include "jobs.h"
#include "settings.h"

namespace worker {

namespace {

// sigaction only: the forked child of a multithreaded process may call nothing else.
void default_dispositions(std::initializer_list<int> signals) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig : signals) sigaction(sig, &dfl, nullptr);
}

void reset_signals_after_fork() {
  // The arbiter's handlers write to the arbiter's pipe; a worker starts from the defaults. The arbiter
  // forks with every signal blocked, so one sent meanwhile arrives here, once the defaults are in place.
  default_dispositions({SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH});
  signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// A process the script forks (multiprocessing, os.fork, joblib, a DataLoader) starts as a child of
// plain Python would, not as a worker: libuv's handlers would write its stop signals into the parent's
// loop (SIGTERM would stop the parent, not the child), the crash responder would answer the parent's
// client over the parent's answer, and SIGALRM (the scoring timeout) and SIGUSR1 (the stack dump) are
// the worker's. Runs in the child inside fork().
void forget_worker_signals_in_child() {
  default_dispositions({SIGTERM, SIGINT, SIGQUIT, SIGUSR1, kSignalAnswerTimedOut, SIGALRM});
  forget_crash_responder();
}

// Back-pressure: waits, without the GIL, until the stream has room for a part of `next` bytes (what it
// handed over and the socket has not taken is under kStreamWindow, or nothing waits at all). False when the
// client is gone meanwhile (closed for not reading, or it left): the stream ends there.
bool wait_for_room(JobQueue& queue, Job& job, size_t next) {
  auto room = [&] {
    uint64_t queued = job.stream_queued.load();
    return queued == 0 || queued + next <= kStreamWindow;
  };
  auto gone = [&] { return job.cancelled.load() || job.abandoned.load(); };
  if (!room() && !gone()) {
    std::unique_lock<std::mutex> lock(queue.mutex);
    job.stream_waiting.store(true);  // before the predicate's loads: the I/O thread notifies once it sees it
    queue.stream_room.wait(lock, [&] { return room() || gone(); });
    job.stream_waiting.store(false);
  }
  return !gone();
}

// --capture: the request is rendered before run() so that a crash can save it; after run(), a raised
// exception (the scoring timeout's included) saves it with its traceback.
void capture_if_failed(const Job& job) {
  const bridge::ScoreResponse& response = job.response;
  if (!response.run_function_failed || response.error_message.empty()) return;
  bool timed_out = response.error_message.rfind("Scoring timeout", 0) == 0;
  CapturedRequest captured = captured_request(job, timed_out ? "timeout" : "exception", response.status);
  captured.traceback = traceback_of(response.failure_detail);
  save_capture(config().settings.capture_dir, captured);
}

void run_job(Slot& slot, JobQueue& queue, Job* job) {
  const http::Request& r = job->request;
  const std::string& capture_dir = config().settings.capture_dir;
  static PreparedCapture crash_capture;
  if (!capture_dir.empty()) {
    prepare_crash_capture(capture_dir, captured_request(*job, "crash", 500), crash_capture);
    arm_crash_capture(&crash_capture);
  }
  bridge::ScoreRequest request;
  request.method = r.method;
  request.target = r.target;
  request.query = r.query();
  if (const std::string* content_type = r.find_header("content-type")) request.content_type = *content_type;
  request.headers = &job->header_views;
  request.body = r.body;
  request.remote_addr = job->remote_addr;
  request.server_port = job->server_port;
  request.protocol = r.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  request.request_id = job->ids.request_id;
  uint64_t started = base::monotonic_ns();
  job->started_ns.store(started, std::memory_order_relaxed);
  queue.running.store(job);
  slot.run_started_ns.store(started, std::memory_order_relaxed);
  bridge::score(request, job->response);
  slot.run_started_ns.store(0, std::memory_order_relaxed);
  if (!capture_dir.empty()) {
    arm_crash_capture(nullptr);
    capture_if_failed(*job);
  }
  slot.requests_served.fetch_add(1, std::memory_order_relaxed);
  job->handled_ms = static_cast<double>(base::monotonic_ns() - started) / 1e6;
  if (!job->response.streamed) {
    queue.complete(job, Completion::Kind::response, {}, true);
    return;
  }
  // Streaming: the head goes out now, each item as it is produced, outside the scoring timeout
  // (docs/behaviour.md 4.9). The job's response is not touched by this thread after the head. An empty
  // stream has no iterator left (next_chunk says so at once): the head, then the end.
  bridge::ScoreResponse& response = job->response;
  void* stream = response.stream;
  job->stream_queued.store(response.body.size());  // the first part goes with the head
  queue.complete(job, Completion::Kind::response, {}, true);
  bridge::ScoreResponse reader;
  reader.stream = stream;
  std::string chunk;
  bool failed = false;
  while (!job->cancelled.load() && !job->abandoned.load() && bridge::next_chunk(reader, chunk, &failed)) {
    if (!wait_for_room(queue, *job, chunk.size())) break;
    job->stream_queued.fetch_add(chunk.size());
    queue.complete(job, Completion::Kind::chunk, std::move(chunk));
  }
  bridge::end_stream(reader);
  queue.complete(job, failed ? Completion::Kind::abort : Completion::Kind::end);
}

void close_responses(JobQueue& queue, std::vector<void*>& closers) {
  queue.take_closers(closers);
  for (void* closer : closers) bridge::close_response(closer);
  closers.clear();
}

void serve_jobs(Slot& slot, JobQueue& queue) {
  std::vector<void*> closers;
  std::vector<void*> holds;
  Job* job = nullptr;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue.mutex);
      queue.wake_python.wait(lock, [&] {
        return queue.stopping || !queue.pending.empty() || !queue.closing.empty() || !queue.holds_to_release.empty();
      });
      holds.swap(queue.holds_to_release);
      if (queue.pending.empty() && queue.closing.empty() && holds.empty()) return;  // stopping, nothing left
      // One job at a time, not all that wait: until its run() begins, a job stays in `pending`, where the
      // I/O thread can still move it to an idle worker (move_waiting_jobs) or refuse it.
      if (!queue.pending.empty()) {
        job = queue.pending.front();
        queue.pending.pop_front();
      }
    }
    // Bodies already written go first: a large one is memory the next run() may want.
    bridge::release_holds(holds);
    // Responses answered before the next run(), as gunicorn closes one before it reads the next request.
    close_responses(queue, closers);
    if (job) {
      run_job(slot, queue, job);
      close_responses(queue, closers);
      job = nullptr;
    }
  }
}

// The reporter marks its report written. The others wait for that (5 s at most, should the reporter
// be killed): their exit makes the arbiter stop the generation, the reporter with it.
void finish_boot_failure(Table& table, bool reporting) {
  if (reporting) {
    // Only over its own "writing": a reload may have reset the flag for a new generation meanwhile.
    uint32_t writing = kBootReportWriting;
    table.boot_failure_reported.compare_exchange_strong(writing, kBootReportWritten);
    return;
  }
  uint64_t give_up_ns = base::monotonic_ns() + 5'000'000'000ull;
  const timespec pause{0, 1'000'000};
  while (table.boot_failure_reported.load() == kBootReportWriting && base::monotonic_ns() < give_up_ns)
    nanosleep(&pause, nullptr);
}

}  // namespace

void run(const Options& options) {
  reset_signals_after_fork();
  pthread_atfork(nullptr, nullptr, forget_worker_signals_in_child);
  Slot& slot = options.table->slots[options.slot];
  slot.pid.store(getpid());
  slot.heartbeat_ns.store(base::monotonic_ns());
  slot.run_started_ns.store(0);
  slot.busy_since_ns.store(1);
  slot.timed_out_run_ns.store(0);
  slot.requests_served.store(0);
  slot.metrics.in_flight.store(0);  // the gauge of a predecessor that died with requests out
  slot.state.store(SlotState::booting);

  bridge::BootOptions boot;
  boot.interpreter = options.interpreter;
  boot.default_interpreter = options.default_interpreter;
  boot.package_dir = options.package_dir;
  Table* table = options.table;
  bool reporting = false;
  boot.claim_error_report = [table, &reporting] {
    uint32_t none = kBootReportNone;
    reporting = table->boot_failure_reported.compare_exchange_strong(none, kBootReportWriting);
    return reporting;
  };
  boot.failure_detail = options.settings.dev || !options.settings.capture_dir.empty();
  if (!options.settings.capture_dir.empty()) prune_captures(options.settings.capture_dir);
  boot.keep_load_failure = options.settings.serve_load_failure;
  bridge::BootOutcome booted = bridge::boot(boot);
  if (booted == bridge::BootOutcome::failed) {
    finish_boot_failure(*table, reporting);
    _exit(kExitBootFailed);
  }
  if (booted == bridge::BootOutcome::load_failed && reporting) finish_boot_failure(*table, true);
  // After boot: config.json, which the boot read, may set the CORS origins.
  Config config = read_config(options, bridge::cors_origins());
  if (booted == bridge::BootOutcome::load_failed) config.load_failure = bridge::load_failure();
  store_config(std::move(config));
  // After boot, over the faulthandler boot enabled: a crash answers the client, then dumps the stack.
  JobQueue queue;
  std::vector<int> listeners = options.listen_fds;
  if (options.metrics_fd >= 0) listeners.push_back(options.metrics_fd);  // a dying worker answers no probe either
  install_crash_responder(queue, listeners);
  gather_stack_dumps();

  // Said before the I/O thread starts: once it runs it may answer requests, whose lines must follow this one.
  if (booted == bridge::BootOutcome::load_failed)
    logline::write(logline::Stream::out, logline::Level::warning, "azmlinfsrv",
                   fmt::format("Worker with pid {} is up without the script (it failed to load): /score answers "
                               "503 with the error until a saved edit loads",
                               getpid()));
  else
    logline::write(logline::Stream::out, logline::Level::info, "azmlinfsrv",
                   fmt::format("Worker with pid {} ready for serving traffic", getpid()));
  start_io(options, queue);
  slot.state.store(SlotState::ready);

  serve_jobs(slot, queue);
  join_io();
  std::vector<void*> closers;  // the answers the I/O thread finished after the last job
  close_responses(queue, closers);
  slot.state.store(SlotState::exiting);
  bridge::shutdown();
  logline::write(logline::Stream::err, logline::Level::info, "gunicorn.error",
                 fmt::format("Worker exiting (pid: {})", getpid()));
  _exit(kExitStopped);
}

}  // namespace worker
