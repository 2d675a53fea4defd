// Internal to worker/: the hand-off between the I/O thread and the Python thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <uv.h>

#include "../http/http.h"
#include "../python_bridge/bridge.h"
#include "worker.h"

namespace worker {

struct Connection;

// Back-pressure for a streamed answer: the Python thread hands over no more of a stream's parts while
// this many of its bytes wait for the socket (a client that reads slowly, or not at all, would otherwise
// have the whole generator queued in the worker). One part larger than this still goes when none waits.
constexpr uint64_t kStreamWindow = 4 * 1024 * 1024;

struct Job {
  Connection* connection = nullptr;  // touched only on the I/O thread
  http::Request request;             // moved out of the parser; read-only for the Python thread
  http::RequestIds ids;              // resolved on arrival, sent with the answer
  bridge::HeaderList header_views;
  bridge::ScoreResponse response;    // written by the Python thread
  uint64_t received_ns = 0;
  double handled_ms = 0;  // time in the Python thread, for the request log line
  std::string remote_addr;
  int server_port = 0;
  // A streamed answer, on the I/O thread: the head promised a body that the chunks and the end complete
  // (its access line waits for the end, as gunicorn writes it after the last byte), the body bytes sent
  // so far, and the Content-Length the script set, to compare with them at the end.
  bool stream_open = false;
  uint64_t body_sent = 0;
  std::string script_content_length;
  // Set by the I/O thread when the client is gone: a streaming Python thread stops iterating (cancel_job
  // also wakes it where it waits for room in the stream's window).
  std::atomic<bool> cancelled{false};
  // A stream's bytes handed to the I/O thread that the socket has not taken yet (kStreamWindow): raised by
  // the Python thread before it hands a part over, lowered by the I/O thread once the socket took it.
  std::atomic<uint64_t> stream_queued{0};
  std::atomic<bool> stream_waiting{false};  // the Python thread waits on JobQueue::stream_room
  // I/O thread only: writes in flight that read this job's bytes (its body, a part) or give its stream's
  // bytes back; a job answered meanwhile is released (reused, its body freed) when the last one completes.
  uint32_t writes = 0;
  bool release_when_written = false;
  // For answering without the Python thread (a native crash, a run() stuck past its deadline):
  int fd = -1;                               // the connection's socket, set on the I/O thread
  std::atomic<uint64_t> started_ns{0};       // when run() began; set by the Python thread
  std::atomic<bool> abandoned{false};        // answered already; the Python thread's result is dropped

  // As new, for the next request: the I/O thread reuses jobs, so that their buffers serve again.
  void reset() {
    connection = nullptr;
    request.clear();
    ids = http::RequestIds{};
    header_views.clear();
    response.clear();
    received_ns = 0;
    handled_ms = 0;
    remote_addr.clear();
    server_port = 0;
    stream_open = false;
    body_sent = 0;
    script_content_length.clear();
    cancelled.store(false);
    stream_queued.store(0);
    stream_waiting.store(false);
    writes = 0;
    release_when_written = false;
    fd = -1;
    started_ns.store(0);
    abandoned.store(false);
  }
};

// What the Python thread hands back. A plain response is one `response` event; a streamed one is a
// `response` (the head) followed by `chunk`s and one `end` (or `abort` when the body failed mid-way).
struct Completion {
  enum class Kind { response, chunk, end, abort };
  Job* job;
  Kind kind;
  std::string data;  // a chunk's bytes
};

// Jobs go to the Python thread through `pending` (mutex and condition variable), a loop pass's worth at
// a time; results come back through `done` and one uv_async wake-up, however many finished meanwhile.
struct JobQueue {
  std::mutex mutex;
  std::condition_variable wake_python;
  std::deque<Job*> pending;
  std::vector<Completion> done;
  // Python references of held bodies (bridge::ScoreResponse::body_hold) whose answers are written: the
  // Python thread gives them back (it alone may take the GIL to do so), woken for it when idle.
  std::vector<void*> holds_to_release;
  // A streaming Python thread waits here while its stream's window is full (Job::stream_waiting).
  std::condition_variable stream_room;
  bool stopping = false;
  uv_async_t* done_async = nullptr;
  // Response objects whose close() is due, handed over by the I/O thread once per loop pass (after its
  // log lines, so close() callbacks log after the answer's access line), closed by the Python thread
  // before its next run().
  std::vector<void*> closing;
  std::atomic<bool> has_closing{false};
  // The job run() is working on; cleared under `mutex` together with the push to `done`, so the I/O
  // thread, holding `mutex`, knows whether a job still waits for run().
  std::atomic<Job*> running{nullptr};

  void push(const std::vector<Job*>& jobs) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      pending.insert(pending.end(), jobs.begin(), jobs.end());
    }
    wake_python.notify_one();
  }
  // `run_returned`: this is the event that ends run() for the job; `running` is cleared with it.
  void complete(Job* job, Completion::Kind kind, std::string data = {}, bool run_returned = false) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (run_returned) running.store(nullptr);
      done.push_back(Completion{job, kind, std::move(data)});
    }
    uv_async_send(done_async);
  }
  void hand_closers(std::vector<void*>& closers) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      closing.insert(closing.end(), closers.begin(), closers.end());
      has_closing.store(true, std::memory_order_relaxed);
    }
    closers.clear();
    wake_python.notify_one();
  }
  // The closers handed over so far (the caller holds no lock).
  void take_closers(std::vector<void*>& out) {
    if (!has_closing.load(std::memory_order_relaxed)) return;
    std::lock_guard<std::mutex> lock(mutex);
    out.insert(out.end(), closing.begin(), closing.end());
    closing.clear();
    has_closing.store(false, std::memory_order_relaxed);
  }
  void release_hold(void* hold) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      holds_to_release.push_back(hold);
    }
    wake_python.notify_one();
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake_python.notify_one();
  }
};

// Starts the I/O thread on the inherited listeners; it accepts only once this returns.
void start_io(const Options& options, JobQueue& queue);
// Waits for the I/O thread to finish (after a stop signal has drained the connections).
void join_io();

// Installs the handlers that answer the client of the running job when the worker dies of a fatal
// signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT). Must run before Python enables faulthandler,
// which writes the Python stack and then hands the signal on to them.
void install_crash_responder(JobQueue& queue, const std::vector<int>& listen_fds);
// Puts faulthandler's handlers back (in a process the script forked: the client is the parent's).
void forget_crash_responder();
// --capture: the capture a fatal signal writes while run() works on this request; null when none.
struct PreparedCapture;
void arm_crash_capture(const PreparedCapture* capture);
// Makes the stack dump of kSignalDumpStacks one block in the log (after boot, over faulthandler's).
void gather_stack_dumps();
// --dev's timeout answers carry the Python stacks. dump_stacks_now: the stacks, written to the log as a
// kSignalDumpStacks dump is, and returned (empty when impossible or when another dump is being written).
// wait_for_stack_dump: the dump a kSignalDumpStacks signal makes, once one done after since_ns is there;
// empty after timeout_ns.
std::string dump_stacks_now();
std::string wait_for_stack_dump(uint64_t since_ns, uint64_t timeout_ns);

}  // namespace worker
