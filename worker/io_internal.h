// Internal to worker/: the I/O thread's shared state, and the files that work on it. One file per
// concern, stacked in one direction (each calls only the ones above it in this list):
//
//   job_pool.cpp         jobs: taken, kept while a write reads them, reused; a stream's window
//   waits.cpp            the wait lists: which timeout a connection is under, and until when
//   connection.cpp       transport: reading, writing, closing, lingering, the server's own errors
//                        about the bytes (malformed, over a limit, too slow) and the expiry sweep
//   fd_reserve.cpp       opening accepted connections, refusing them when descriptors run short
//   handoff.cpp          the workers' shared queue: a connection whose request this worker cannot
//                        start now goes to the first worker that is free
//   accept.cpp           accepting: the listeners and the hand-off queue, taken from only while this
//                        worker can start a request soon when another could (balanced dispatch)
//   respond.cpp          answers to requests: the head every answer starts with, the request
//                        headers, the request and access log lines, the scored answer
//   route.cpp            the views: routing, request ids, health, swagger, OPTIONS/HEAD rules
//   metrics_listener.cpp GET /metrics and /ready on the metrics port
//   drain.cpp            stopping: the backlog, idle connections, the last connection
//   deadline.cpp         scoring deadlines: SIGALRM, a run() stuck in native code, WORKER_TIMEOUT
//   request.cpp          parsing input into requests, jobs to Python and their results back
//   io.cpp               the loop: setup, accepting, the heartbeat, the thread
//
// The connection layer never calls up: bytes it reads go to io->read_cb (request.cpp's, set by io.cpp,
// as uv_read_start takes its read_cb), and the last connection of a draining worker closing is told
// through io->on_drained (drain.cpp's).
#pragma once

#include <pthread.h>
#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../base/base.h"
#include "jobs.h"
#include "metrics.h"
#include "write_bufs.h"

namespace worker {

// A draining worker waits this long for the first request of a connection it accepted just before.
constexpr uint64_t kDrainGraceMs = 1000;
// A worker that retires while the server goes on keeps its idle keep-alive connections this long, for
// their clients' next request (answered with Connection: close), then closes those still idle.
constexpr uint64_t kRetireGraceMs = 5000;
// SIGALRM's TimeoutError unwinds a Python run() in well under this; longer means native code.
constexpr uint64_t kStuckGraceNs = 50 * 1000000ull;
constexpr uint64_t kDeadlineTickMs = 20;
// A connection keeps its response buffer between requests, unless an answer made it large.
constexpr size_t kKeptOutCapacity = 64 * 1024;
// How long a closing connection reads what the client still sends, so that the kernel does not
// answer it with a reset that destroys the error response before the client reads it.
constexpr uint64_t kLingerNs = 2'000'000'000;
constexpr uint64_t kSweepMs = 100;
// Answered jobs kept for reuse: about one per connection that has a request in flight at a time.
constexpr size_t kSpareJobs = 64;
// The most bytes of a request (and of those sent after it) that move with its connection to another
// worker (handoff.cpp); a larger request is answered where it was read. One read's worth: the taker
// reads the message into its read buffer.
constexpr size_t kHandOffMax = 64 * 1024;
// Bytes of later requests kept while an earlier one waits for Python.
constexpr size_t kMaxPipelinedAhead = 64 * 1024;
// A body up to this size is copied behind its head and goes out with it as one buffer in one write (the
// hot path). A larger one is sent from where it is, as a second buffer: copying it into the connection's
// buffer, and what the socket does not take at once into the write request, would cost twice its size.
constexpr size_t kInlineBodyMax = 64 * 1024;

// The kinds of wait a connection can be in (waits.cpp). All waits of a kind last equally long.
enum Wait : uint8_t {
  kNone = 0,    // Python is working on its request, or it is closing
  kIdle = 1,    // keep-alive: between requests (close quietly)
  kHead = 2,    // a new connection, or a request's head arriving (408 when some of it came)
  kBody = 3,    // a request body arriving, or a response the client reads too slowly (408 / close)
  kLinger = 4,  // closing: reading what the client still sends
};
constexpr int kWaitKinds = 5;

// Bytes an answer sends after its head in Connection::out, from where they are (never copied into `out`).
struct OutBody {
  std::string_view bytes;
  Job* job = nullptr;           // whose bytes they are (its response's body): kept while a write reads them
  std::string* part = nullptr;  // or a stream's part they are: moved into the write when it must wait
  uint64_t stream_bytes = 0;    // a stream's bytes in this write (here or in `out`): back to job's window once taken
  std::string_view trailer;     // static bytes after them (a chunk's CRLF)
};

struct Connection {
  uv_tcp_t tcp;  // first: the handle's address is the connection's
  http::Parser parser;
  std::string out;       // the response being built; reused across requests
  OutBody out_body;      // a large body that goes after `out` (respond_scored), sent by flush
  std::string leftover;  // bytes read past a request whose answer is still pending (pipelining)
  // The bytes of the request being read, kept so the connection can move to another worker with them
  // (handoff.cpp); not whole once they passed kHandOffMax or a "100 Continue" went out.
  std::string request_bytes;
  bool request_bytes_whole = true;
  std::string peer;      // remote address, for the access log and the raw request
  int local_port = 0;
  Job* job = nullptr;    // the request the Python thread is working on
  int pending_writes = 0;
  bool reading = false;
  bool close_after_write = false;
  bool closing = false;
  bool had_request = false;  // a draining worker gives a connection that sent nothing yet a moment
  // "100 Continue" went out and the body is on its way: a connection that is to close (a drain, a
  // Connection: close request) waits for it, since its request is to be answered, not cut off.
  bool awaiting_continued_body = false;
  // Timeouts: the wait list this connection is in (see update_wait) and when its wait ends.
  Connection* wait_prev = nullptr;
  Connection* wait_next = nullptr;
  uint64_t deadline_ns = 0;
  uint8_t wait = kNone;
  // The write timeout counts from the last progress: the bytes of answers handed to the socket or to
  // uv_write, ever, and how many of them had reached the client (bytes_delivered) when the wait began.
  uint64_t bytes_out = 0;
  uint64_t wait_delivered = 0;
  Job* writing_for = nullptr;  // the job whose answer the latest queued write carries (for the log)
  bool peer_eof = false;   // the client half-closed; answer what it sent, then close
  bool lingering = false;  // answered with Connection: close; reading what is left before closing
  uint32_t responses = 0;  // responses started; a wait armed before the latest one starts over
  uint32_t wait_mark = 0;  // `responses` when the current wait was armed
  // Accepted on the metrics listener: only GET /metrics and /ready, not counted in the metrics. It drains
  // like any connection: one accepted must get its answer before the worker exits.
  bool metrics = false;
  MetricRoute route = MetricRoute::other;  // of the request being answered, for the metrics
  uint64_t received_ns = 0;                // when that request's last byte arrived

  explicit Connection(const http::Limits& limits) : parser(limits) {}
};

// A streamed answer is still being written: a connection that is to close after its answer (HTTP/1.0, a
// drain) closes after the stream's end, not after the chunk that happens to be flushed first.
inline bool stream_open(const Connection* c) { return c->job && c->job->stream_open; }


// A listening socket inherited from the arbiter, polled by accept.cpp.
struct Listener {
  uv_poll_t poll;
  int fd = -1;
  bool paced = false;    // the scoring port: taken from only while this worker can start a request soon
  bool metrics = false;  // the metrics port: its connections answer GET /metrics and /ready only
  bool handoff = false;  // the hand-off queue (handoff.cpp), not a listening socket
  bool polling = false;
  bool closed = false;
};

struct Io {
  uv_loop_t loop;
  std::vector<Listener*> listeners;
  Listener* metrics_listener = nullptr;  // null: none
  uv_timer_t pace_check;    // runs while the worker has work: whether it should take connections now
  uv_timer_t accept_retry;  // out of descriptors: polling resumes when it fires
  int handoff_send = -1;    // worker::Options::handoff_fds; -1: no hand-off
  int handoff_recv = -1;
  Listener* handoff_queue = nullptr;  // polled while the worker has no work
  uv_read_cb read_cb = nullptr;      // where a connection's bytes go (request.cpp)
  void (*on_drained)() = nullptr;    // the last connection of a draining worker closed (drain.cpp)
  uv_async_t done_async;
  uv_signal_t sigterm, sigint, sigquit;
  uv_timer_t heartbeat;
  uv_signal_t timed_out;        // the arbiter's WORKER_TIMEOUT notice (SIGUSR2)
  uv_timer_t deadline_watch;    // runs while jobs are out: the scoring timeout, a run() stuck past it
  uint64_t deadline_tick_ms = kDeadlineTickMs;  // shorter when SCORING_TIMEOUT_MS is
  uv_timer_t alarm_due;         // the last stretch to a scoring deadline, to the millisecond
  uint64_t alarmed_deadline = 0;  // the run() deadline SIGALRM was sent for
  pthread_t python_thread;      // the worker's main thread, which runs Python and takes SIGALRM
  uv_timer_t drain_grace;       // closes connections that sent nothing after a drain began
  uv_timer_t exit_timer;        // a worker given up on exits shortly after its last answer
  size_t jobs_outstanding = 0;
  long scoring_timeout_ms = 0;
  uint64_t worker_timeout_s = 0;  // WORKER_TIMEOUT, for the answer the arbiter's notice asks for
  bool exit_when_drained = false;
  // Non-empty once the Python thread will not take another job (refuse_waiting_jobs): why, for the 503.
  std::string python_unavailable;
  bool dev = false;  // --dev: a failed run()'s detail goes into its answer
  std::string capture_dir;  // --capture: where a timed-out request is saved; empty: not saved
  // Non-empty when the script failed to load and the worker serves anyway (--reload): the JSON body of
  // the 503 that /score and /swagger.json answer until an edit reloads the workers.
  std::string load_failure;
  uv_timer_t sweep;  // expires connection waits (update_wait)
  JobQueue* queue = nullptr;
  Table* table = nullptr;
  Slot* slot = nullptr;
  MetricsWriter metrics;
  BuildInfo build;
  http::Limits limits;
  size_t connections = 0;
  bool draining = false;
  std::string server_version;  // x-ms-server-version; empty: not sent
  http::CorsPolicy cors;       // from AML_CORS_ORIGINS
  uint64_t wait_ns[kWaitKinds] = {};
  Connection* wait_head[kWaitKinds] = {};
  Connection* wait_tail[kWaitKinds] = {};
  bool accept_failing = false;  // out of file descriptors: log once per burst
  uint64_t refused = 0;
  uint64_t fd_limit = 0;        // descriptors above fd_limit - fd_reserve are refused (see refuse_if_no_fds)
  uint64_t fd_reserve = 0;
  std::thread thread;
  uv_prepare_t flush_logs;
  uv_check_t hand_off;             // gives the Python thread the pass's jobs at once (one wake-up)
  std::vector<Job*> for_python;    // jobs read in this loop pass, in order
  std::vector<Job*> spare_jobs;    // answered jobs kept for reuse (request.cpp)
  std::vector<void*> closers;      // Response objects of answered jobs, for the Python thread to close
  std::vector<Completion> done;    // on_jobs_done's batch; kept to keep its capacity
  std::string log_scratch;  // a request line's message while it is built
  // Response headers of run()'s that were dropped and said so: each is logged once per worker, since a
  // script sets the same ones on every answer. Bounded by the names dropped (http::is_server_owned_header).
  std::vector<std::string> warned_headers;
  bool warned_interim_status = false;
  base::SecondStamp access_log_time{"%d/%b/%Y:%H:%M:%S +0000"};  // gunicorn's access-log time
  char read_buffer[64 * 1024];
};

extern Io* io;  // the I/O thread's, created by start_io()

// The Python thread has a job, or one waits to be handed to it.
inline bool worker_has_work() { return io->jobs_outstanding > 0 || !io->for_python.empty(); }

// ---- routes, as pure functions of the request (the transport counts its errors by them too) ----------

enum class Route { health, score, swagger, not_found };

inline Route route_of(const http::Request& r) {
  std::string path = http::normalize_path(r.path());
  if (path == "/") return Route::health;
  if (path == "/score") return Route::score;
  if (path == "/swagger.json") return Route::swagger;
  return Route::not_found;
}

inline MetricRoute metric_route(Route route) {
  switch (route) {
    case Route::health: return MetricRoute::health;
    case Route::score: return MetricRoute::score;
    case Route::swagger: return MetricRoute::swagger;
    case Route::not_found: return MetricRoute::other;
  }
  return MetricRoute::other;
}

// ---- job_pool.cpp ------------------------------------------------------------------------------------
Job* acquire_job();
// Gives a finished job back for reuse (or frees it), once no write reads it any more; a body held in its
// Python object goes back to the Python thread.
void release_job(Job* job);
// The socket took a stream's bytes (or they will never be sent): the stream's window has room again.
void give_back_stream_bytes(Job* job, uint64_t bytes);
// A write that read the job's bytes, or paced its stream, completed (or was cancelled).
void job_written(Job* job, uint64_t stream_bytes);
// The job's client is gone: a stream's Python thread stops, also where it waits for room.
void cancel_job(Job* job);

// ---- waits.cpp ---------------------------------------------------------------------------------------
void unlink_wait(Connection* c);
void update_wait(Connection* c, bool progress);
// The bytes of answers the client's TCP has acknowledged so far on this connection: what it read, or what
// its receive buffer holds. Only the reader moves it, never the worker's writing.
uint64_t bytes_delivered(Connection* c);

// ---- connection.cpp ----------------------------------------------------------------------------------
void close_connection(Connection* c);
// Fills c->peer (for the access log and the raw request) and c->local_port from the socket.
void identify_peer(Connection* c);
void flush(Connection* c);  // sends c->out, then c->out_body
// Sends c->out, then `body`: straight to the socket as far as it takes them, the rest queued (c->out's
// rest copied, the body's read from where it is).
void send(Connection* c, OutBody body);
void start_reading(Connection* c);
// Reads what already arrived on a connection that reads, as the loop would on its next pass.
void read_now(Connection* c);
void stop_reading(Connection* c);
void linger(Connection* c);
// An answer the server makes itself about the connection (malformed input, limits, no descriptors):
// JSON, gunicorn's title-case reason, and the connection closes after it.
void append_server_error(std::string& out, int status, std::string_view message);
void respond_transport_error(Connection* c, const http::ParseError& error);
void on_sweep(uv_timer_t*);

// ---- fd_reserve.cpp ----------------------------------------------------------------------------------
void measure_fd_limit();
void note_accept_failure();
// A connection from an accepted descriptor (which it owns from here); null when it was refused (no
// descriptors to spare: answered 503 and closed) or could not be opened.
Connection* open_connection(int fd, bool metrics);

// ---- handoff.cpp -------------------------------------------------------------------------------------
// Bytes the parser took for the request being read (kept for a hand-off), and forgetting them at the
// request's end.
void keep_request_bytes(Connection* c, const char* data, size_t len);
void forget_request_bytes(Connection* c);
// Moves the connection, whose request was just read and goes to Python, with `rest` (bytes read after
// it) to the shared queue, when the run() it would wait for has gone on a while and another worker
// serves; true when it moved (the connection is closed here then).
bool hand_off(Connection* c, const char* rest, size_t rest_len);
// Requests that wait for this worker's Python thread move to the shared queue once the run() ahead of
// them has gone on a while (a request that came just as a long run() began stayed).
void move_waiting_jobs();
// Takes one connection from the shared queue and goes on with its bytes; false when none was queued.
bool take_handed_off(bool close_after_answer);

// ---- accept.cpp --------------------------------------------------------------------------------------
// Sets up the listeners and the hand-off queue (not yet polled: pace_accepting starts them); false
// when one cannot be polled.
bool listen_on(const std::vector<int>& fds, int paced_fd, int metrics_fd, const int handoff_fds[2]);
void pace_accepting();
// A draining worker takes the connections the kernel queued on its listeners and answers their requests
// with Connection: close.
void adopt_backlog();
// When the whole server stops, a draining worker with no work takes a request that waits in the shared
// queue (answered with Connection: close); true when it took one.
bool adopt_handed_off();
void close_listener(Listener* l);

// ---- respond.cpp -------------------------------------------------------------------------------------
void start_response(Connection* c, const http::Request& r, int status, std::string_view reason,
                    std::string_view content_type = {}, std::optional<size_t> content_length = {});
// `cors`: false when the answer carries its own Access-Control-Allow-Origin (flask-cors then adds nothing).
void add_request_headers(Connection* c, const http::Request& r, const http::RequestIds& ids, bool cors = true);
void end_response(Connection* c, const http::Request& r, std::string_view body);
// Every answer to a request that was read completely: counted and timed (count_answer_of), then its
// access line (log_access) with the body bytes sent. note_answer does both; a streamed answer is counted
// at its head and logged at its end.
void count_answer_of(Connection* c, int status);
void log_access(Connection* c, const http::Request& r, int status, uint64_t body_sent, std::string_view request_id);
void note_answer(Connection* c, const http::Request& r, int status, size_t body_sent, std::string_view request_id);
// A streamed answer ended with all its chunks sent: its access line, and the script's Content-Length
// checked against what was sent.
void end_streamed_answer(Connection* c, Job* job);
void log_view_request(const http::Request& r, int status, double ms, std::optional<size_t> length,
                      std::string_view request_id);
double ms_since(uint64_t start_ns);
// A JSON {"message": ...} answer; `run_failed` is its x-ms-run-function-failed. `error`, when given, is
// a JSON object added as "error" (--dev's detail).
void respond_message(Connection* c, const http::Request& r, int status, std::string_view message,
                     const http::RequestIds* ids, bool run_failed = false, std::string_view error = {});
void respond_scored(Connection* c, Job* job, const http::RequestIds& ids);
// Chunked framing for HTTP/1.1; an HTTP/1.0 client gets the bytes as they are and a close at the end.
inline bool chunked(const http::Request& r) { return !(r.version_major == 1 && r.version_minor == 0); }

// ---- route.cpp ---------------------------------------------------------------------------------------
// Answers a parsed request that needs no Python; false when it is a score request for run().
bool answer_without_python(Connection* c, http::Request& r, uint64_t received_ns, http::RequestIds& ids);
// A request that answer_without_python would leave to run() (or a 431 for its ids): what may move to
// another worker. Pure: it answers and logs nothing.
bool goes_to_python(const http::Request& r);

// ---- metrics_listener.cpp ----------------------------------------------------------------------------
void respond_metrics_listener(Connection* c, const http::Request& r);

// ---- drain.cpp ---------------------------------------------------------------------------------------
void begin_drain();
void finish_drain();
void close_metrics_listener();
void on_stop_signal(uv_signal_t* handle, int signum);
[[noreturn]] void exit_worker();

// ---- deadline.cpp ------------------------------------------------------------------------------------
void watch_deadlines();
void on_timed_out(uv_signal_t*, int);
// run() returned after the arbiter declared it past WORKER_TIMEOUT (the stack dump's signal can end a
// blocking call): its client gets the timeout's answer instead. False for any other job.
bool answer_if_timed_out(Job* job);
// Answers every job that waits for the Python thread with a 503 saying why it will not run.
void refuse_waiting_jobs(std::string_view why);

// ---- request.cpp -------------------------------------------------------------------------------------
void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
void hand_over_closers();
void on_jobs_done(uv_async_t*);
void on_poll_handled(uv_check_t*);

}  // namespace worker
