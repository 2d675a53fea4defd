// Scoring deadlines, watched by the I/O thread while jobs are out: the scoring timeout's SIGALRM to the
// Python thread, a run() stuck in native code past it, and the arbiter's WORKER_TIMEOUT notice. In the
// last two the client is answered without waiting for run(), which may never return.
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include "../log/log.h"
#include "capture.h"
#include "io_internal.h"

namespace worker {

namespace {

// How long --dev's WORKER_TIMEOUT answer waits for the stacks; the arbiter kills the worker a second
// after it asked for them.
constexpr uint64_t kKillAfterDumpWaitNs = 500'000'000;

// Answers a job whose client must not wait for, or get, run()'s result. `error`: --dev's detail.
void answer_abandoned_job(Job* job, std::string_view message, int status = 500, bool run_failed = true,
                          std::string_view error = {}) {
  Connection* c = job->connection;
  job->connection = nullptr;
  c->job = nullptr;
  c->leftover.clear();
  c->close_after_write = true;
  if (c->closing) {  // the client left while run() worked
    c->closing = false;
    close_connection(c);
    return;
  }
  const http::Request& r = job->request;
  constexpr std::string_view kErrorKey = ", \"error\": ";  // how respond_message adds it
  size_t length = http::json_message(message).size() + (error.empty() ? 0 : kErrorKey.size() + error.size());
  log_view_request(r, status, ms_since(job->received_ns), length, job->ids.request_id);
  respond_message(c, r, status, message, &job->ids, run_failed, error);
  stop_reading(c);
  flush(c);
}

// Takes the job run() is working on from it: the Python thread keeps the Job until run() returns, if
// ever, and its result is then dropped. `expected`, when given, must still be the running job. Null when
// there is nothing to answer (run() returned meanwhile).
Job* abandon_running_job(Job* expected) {
  std::lock_guard<std::mutex> lock(io->queue->mutex);
  Job* job = io->queue->running.load();
  if (!job || (expected && job != expected) || job->abandoned.load() || !job->connection) return nullptr;
  job->abandoned.store(true);  // from now on the crash responder leaves its socket alone
  return job;
}

// --capture: a request whose run() the I/O thread gave up on, with the Python stacks as its traceback.
void save_timed_out(const Job& job, const std::string& stack) {
  if (io->capture_dir.empty()) return;
  CapturedRequest captured = captured_request(job, "timeout", 500);
  captured.traceback = stack.empty() ? "The Python stacks are in the server log (faulthandler's dump)." : stack;
  save_capture(io->capture_dir, captured);
}

// --dev: the Python stacks as the answer's "error".
std::string stack_detail(std::string_view type, std::string_view stack) {
  if (stack.empty()) return {};
  std::string detail = "{\"type\": \"";
  base::append_json_string(detail, type, base::JsonText::ensure_ascii);
  detail += "\", \"stack\": \"";
  base::append_json_string(detail, stack, base::JsonText::ensure_ascii);
  detail += "\"}";
  return detail;
}

std::string worker_timeout_message() {
  return fmt::format("The worker timed out: run() took longer than WORKER_TIMEOUT ({} s), so the worker is being "
                     "replaced. The server log shows the Python stack where run() was.",
                     io->worker_timeout_s);
}

// After the timed-out run()'s client was answered: the worker is killed in a second, so the requests
// waiting behind it are refused now, and no more are taken.
void leave_after_worker_timeout() {
  refuse_waiting_jobs("the request before it on this worker ran longer than WORKER_TIMEOUT");
  begin_drain();
}

void on_alarm_due(uv_timer_t*);

// The scoring timeout's SIGALRM (docs/behaviour.md 2.4), sent to the Python thread when the running
// run()'s deadline has come, once per run(); its handler raises TimeoutError there. Within a tick of the
// deadline a one-shot timer waits for the exact millisecond.
void send_alarm_if_due() {
  uint64_t deadline = bridge::scoring_deadline_ns();
  if (deadline == 0 || deadline == io->alarmed_deadline || bridge::scoring_timeout_raised()) return;
  uint64_t now = base::monotonic_ns();
  if (now < deadline) {
    uint64_t left_ms = (deadline - now + 999999) / 1000000;
    if (left_ms <= io->deadline_tick_ms) uv_timer_start(&io->alarm_due, on_alarm_due, left_ms, 0);
    return;
  }
  io->alarmed_deadline = deadline;
  pthread_kill(io->python_thread, SIGALRM);
}

void on_alarm_due(uv_timer_t*) { send_alarm_if_due(); }

// While jobs are out, every tick: is the running run()'s scoring timeout due (send_alarm_if_due)? Has it
// outlived SCORING_TIMEOUT_MS by more than the TimeoutError needs to unwind it? Then it is stuck in native
// code (a C call that does not return to the interpreter): answer its client now and have this worker
// replaced.
void on_deadline_tick(uv_timer_t* timer) {
  if (io->jobs_outstanding == 0) {
    uv_timer_stop(timer);
    return;
  }
  send_alarm_if_due();
  Job* job = io->queue->running.load();  // never freed while running; only this thread frees jobs
  if (!job || job->abandoned.load()) return;
  uint64_t started = job->started_ns.load();
  uint64_t limit = static_cast<uint64_t>(io->scoring_timeout_ms) * 1000000ull + kStuckGraceNs;
  if (!started || base::monotonic_ns() - started < limit || bridge::scoring_timeout_raised()) return;
  if (!abandon_running_job(job)) return;
  std::string message = fmt::format("Scoring timeout after {} ms", io->scoring_timeout_ms);
  bool want_stack = io->dev || !io->capture_dir.empty();
  if (!want_stack) answer_abandoned_job(job, message);
  refuse_waiting_jobs("the request before it on this worker is stuck in native code past the scoring timeout");
  logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv",
                 fmt::format("run() is still running {} ms after the scoring timeout of {} ms (SCORING_TIMEOUT_MS): "
                             "it is stuck in native code, which the TimeoutError cannot interrupt. Its stack is "
                             "below. The client got the scoring-timeout answer; worker {} stops taking requests "
                             "and a new worker replaces it.",
                             kStuckGraceNs / 1000000, io->scoring_timeout_ms, getpid()));
  if (want_stack) {
    // This thread takes no signals: it writes the stacks itself (the Python thread's shows the native
    // call's line), then answers (with them under --dev). The job is abandoned already, so run() cannot.
    std::string stack = dump_stacks_now();
    save_timed_out(*job, stack);
    answer_abandoned_job(job, message, 500, true, io->dev ? stack_detail("ScoringTimeout", stack) : std::string());
  } else {
    // Then the stacks: faulthandler, on the Python thread, shows the line of the native call. Not before
    // the answer: its signal interrupts a blocking call, and run() might then unwind and answer itself.
    kill(getpid(), kSignalDumpStacks);
  }
  io->slot->replace_requested.store(1);
  io->exit_when_drained = true;
  begin_drain();
}

}  // namespace

// The Python thread will not come back for the jobs waiting for it (run() stuck in native code, or
// past WORKER_TIMEOUT: the worker is killed soon): each is answered now with a 503 that says nothing of
// it ran, rather than dropped with the worker. From then on, new requests to this worker get the same.
void refuse_waiting_jobs(std::string_view why) {
  if (io->python_unavailable.empty()) io->python_unavailable = why;
  std::deque<Job*> waiting;
  {
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    waiting.swap(io->queue->pending);
  }
  waiting.insert(waiting.end(), io->for_python.begin(), io->for_python.end());
  io->for_python.clear();
  for (Job* job : waiting) {
    --io->jobs_outstanding;
    set_in_flight(io->metrics, static_cast<uint32_t>(io->jobs_outstanding));
    if (job->connection)
      answer_abandoned_job(job,
                           fmt::format("This request did not run: {}. This worker is being replaced; send the "
                                       "request again.",
                                       why),
                           503, /*run_failed=*/false);
    release_job(job);
  }
}

void watch_deadlines() {
  ++io->jobs_outstanding;
  set_in_flight(io->metrics, static_cast<uint32_t>(io->jobs_outstanding));
  if (io->scoring_timeout_ms > 0 && !uv_is_active(reinterpret_cast<uv_handle_t*>(&io->deadline_watch)))
    uv_timer_start(&io->deadline_watch, on_deadline_tick, io->deadline_tick_ms, io->deadline_tick_ms);
}

// The arbiter found run() older than WORKER_TIMEOUT; it has asked faulthandler for the stacks and
// kills this worker in a second. Answer the client while we can, and take no more connections.
void on_timed_out(uv_signal_t*, int) {
  if (Job* job = abandon_running_job(nullptr)) {
    std::string stack;
    // --dev, --capture: the stacks the arbiter's kSignalDumpStacks had written (it is sent just before this
    // one), in the answer and the capture; the worker is killed a second after them.
    if (io->dev || !io->capture_dir.empty()) stack = wait_for_stack_dump(job->started_ns.load(), kKillAfterDumpWaitNs);
    save_timed_out(*job, stack);
    answer_abandoned_job(job, worker_timeout_message(), 500, true,
                         io->dev ? stack_detail("WorkerTimeout", stack) : std::string());
  }
  leave_after_worker_timeout();
}

bool answer_if_timed_out(Job* job) {
  uint64_t declared = io->slot->timed_out_run_ns.load();
  if (!job->connection || !declared || job->started_ns.load() != declared) return false;
  job->abandoned.store(true);
  answer_abandoned_job(job, worker_timeout_message());
  leave_after_worker_timeout();
  return true;
}

}  // namespace worker
