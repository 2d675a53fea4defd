// The I/O thread: libuv loop, connections, routing (CONTRACT.md 3.1), and every response.
// Requests that need no Python (health, routing errors, limits, malformed input, OPTIONS/HEAD rules)
// are answered here at once; score requests become jobs for the Python thread.
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "../log/log.h"
#include "jobs.h"
#include "settings.h"

namespace worker {

struct Connection {
  uv_tcp_t tcp;  // first: the handle's address is the connection's
  http::Parser parser;
  std::string out;       // the response being built; reused across requests
  std::string leftover;  // bytes read past a request whose answer is still pending (pipelining)
  std::string peer;      // remote address, for the access log and the raw request
  int local_port = 0;
  Job* job = nullptr;    // the request the Python thread is working on
  int pending_writes = 0;
  bool reading = false;
  bool close_after_write = false;
  bool closing = false;
  bool had_request = false;  // a draining worker gives a connection that sent nothing yet a moment
  // Timeouts: the wait list this connection is in (see update_wait) and when its wait ends.
  Connection* wait_prev = nullptr;
  Connection* wait_next = nullptr;
  uint64_t deadline_ns = 0;
  uint8_t wait = 0;
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

namespace {

constexpr int kBacklog = 2048;
// A draining worker waits this long for the first request of a connection it accepted just before.
constexpr uint64_t kDrainGraceMs = 1000;
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
// Bytes of later requests kept while an earlier one waits for Python.
constexpr size_t kMaxPipelinedAhead = 64 * 1024;

struct Io {
  uv_loop_t loop;
  std::vector<uv_tcp_t*> listeners;
  uv_tcp_t* metrics_listener = nullptr;  // null: none. Kept after it is closed, so the walkers still skip it
  bool metrics_listener_closed = false;
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
  bool exit_when_drained = false;
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
  uint64_t wait_ns[5] = {};    // per Wait kind
  Connection* wait_head[5] = {};
  Connection* wait_tail[5] = {};
  bool accept_failing = false;  // out of file descriptors: log once per burst
  uint64_t refused = 0;
  uint64_t fd_limit = 0;        // descriptors above fd_limit - fd_reserve are refused (see refuse_if_no_fds)
  uint64_t fd_reserve = 0;
  std::thread thread;
  uv_prepare_t flush_logs;
  uv_check_t hand_off;             // gives the Python thread the pass's jobs at once (one wake-up)
  std::vector<Job*> for_python;    // jobs read in this loop pass, in order
  std::vector<Job*> spare_jobs;    // answered jobs kept for reuse (acquire_job)
  std::vector<Completion> done;    // on_jobs_done's batch; kept to keep its capacity
  std::string log_scratch;  // a request line's message while it is built
  http::SecondStamp access_log_time{"%d/%b/%Y:%H:%M:%S +0000"};  // gunicorn's access-log time
  char read_buffer[64 * 1024];
};

Io* io = nullptr;

void process_input(Connection* c, const char* data, size_t len);
void watch_deadlines();

void on_exit_timer(uv_timer_t*) {
  logline::write(logline::Stream::err, logline::Level::info, "gunicorn.error",
                 fmt::format("Worker exiting (pid: {})", getpid()));
  logline::flush();
  _exit(kExitStopped);
}
void update_wait(Connection* c, bool progress);
void unlink_wait(Connection* c);
void linger(Connection* c);
void start_reading(Connection* c);
void note_accept_failure();
void note_accept_recovered();
bool refuse_if_no_fds(Connection* c);

void close_metrics_listener() {
  if (!io->metrics_listener || io->metrics_listener_closed) return;
  uv_close(reinterpret_cast<uv_handle_t*>(io->metrics_listener), nullptr);
  io->metrics_listener_closed = true;
}

// The last connection of a draining worker is gone: the Python thread may stop, and so may the loop.
void finish_drain() {
  // Now, not when the loop ends: a probe accepted in this last pass would never be answered (closing
  // also drops the listener's events already polled). Other workers, if any, still answer probes.
  close_metrics_listener();
  if (io->exit_when_drained) {
    // run() is stuck in native code and will not come back for the Python thread to stop: leave,
    // after a moment for faulthandler to finish writing the stacks.
    uv_timer_start(&io->exit_timer, on_exit_timer, 200, 0);
    return;
  }
  io->queue->stop();
  uv_stop(&io->loop);
}

// ---- writing ----------------------------------------------------------------------------------------

struct WriteRequest {
  uv_write_t req;
  std::string data;
};

void on_closed(uv_handle_t* handle) {
  auto* c = reinterpret_cast<Connection*>(handle);
  delete c;
  --io->connections;
  if (io->draining && io->connections == 0) finish_drain();
}

void close_connection(Connection* c) {
  if (c->closing) return;
  unlink_wait(c);
  c->closing = true;
  if (c->job) {  // freed when its job comes back; a stream stops producing
    c->job->cancelled.store(true);
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
}

void on_written(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteRequest*>(req);
  auto* c = static_cast<Connection*>(req->data);
  delete w;
  --c->pending_writes;
  if (status < 0) close_connection(c);
  else if (c->close_after_write && c->pending_writes == 0) linger(c);
  else if (!c->closing) {
    // A client that stopped reading was paused (on_read); the socket drained, so read again.
    if (c->pending_writes == 0 && !c->job) start_reading(c);
    update_wait(c, true);
  }
}

// Sends c->out: straight to the socket when it takes it all, else queued with a copy.
void flush(Connection* c) {
  if (c->closing || c->out.empty()) return;
  size_t sent = 0;
  if (c->pending_writes == 0) {
    uv_buf_t buf = uv_buf_init(c->out.data(), static_cast<unsigned>(c->out.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1);
    if (n > 0) sent = static_cast<size_t>(n);
    else if (n != UV_EAGAIN) {
      c->out.clear();
      close_connection(c);
      return;
    }
  }
  if (sent < c->out.size()) {
    auto* w = new WriteRequest;
    w->data.assign(c->out, sent, std::string::npos);
    w->req.data = c;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    ++c->pending_writes;
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, on_written) < 0) {
      --c->pending_writes;
      delete w;
      c->out.clear();
      close_connection(c);
      return;
    }
  }
  c->out.clear();
  if (c->out.capacity() > kKeptOutCapacity) std::string().swap(c->out);
  if (c->close_after_write && c->pending_writes == 0) linger(c);
}

// ---- response pieces ------------------------------------------------------------------------------

// Status line and the headers every response starts with.
void start_response(Connection* c, const http::Request& r, int status, std::string_view reason) {
  bool keep = r.keep_alive && !io->draining && !c->close_after_write;
  if (!keep) c->close_after_write = true;
  ++c->responses;
  http::begin_response(c->out, status, reason);
  http::add_header(c->out, "Server", "azmlinfsrv");
  http::add_date_header(c->out);
  if (!keep) http::add_header(c->out, "Connection", "close");
  else if (r.version_major == 1 && r.version_minor == 0) http::add_header(c->out, "Connection", "keep-alive");
}

// The after-request headers of "family A" responses (CONTRACT.md 3.2), in the reference's order.
void add_request_headers(Connection* c, const http::Request& r, const http::RequestIds& ids) {
  io->cors.append_headers(r, c->out);
  if (!io->server_version.empty()) http::add_header(c->out, "x-ms-server-version", io->server_version);
  if (!ids.request_id.empty()) http::add_header(c->out, "x-request-id", ids.request_id);
  if (!ids.legacy_id.empty()) http::add_header(c->out, "x-ms-request-id", ids.legacy_id);
  if (!ids.client_id.empty()) http::add_header(c->out, "x-ms-client-request-id", ids.client_id);
  if (const std::string* trace = r.find_header("traceid")) http::add_header(c->out, "TraceId", *trace);
}

void end_response(Connection* c, const http::Request& r, std::string_view body) {
  http::end_head(c->out);
  if (r.method != "HEAD") c->out.append(body);
}

// Every answer to a request that was read completely ends here: its count and duration, then the
// access log line.
void note_answer(Connection* c, const http::Request& r, int status, size_t body_sent, std::string_view request_id) {
  count_answer(io->metrics, c->route, status);
  observe_request_duration(io->metrics, c->route, monotonic_ns() - c->received_ns);
  // The reference's access log drops exactly the records containing "GET / HTTP/1.1".
  if (r.method == "GET" && r.target == "/" && r.version_major == 1 && r.version_minor == 1) return;
  const std::string* agent = r.find_header("user-agent");
  const std::string* referer = r.find_header("referer");
  std::string& line = io->log_scratch;
  line.clear();
  fmt::format_to(std::back_inserter(line), FMT_COMPILE("{} - - [{}] \"{} {} HTTP/{}.{}\" {} "), c->peer,
                 io->access_log_time.now(), r.method, r.target, r.version_major, r.version_minor, status);
  if (body_sent) fmt::format_to(std::back_inserter(line), FMT_COMPILE("{}"), body_sent);
  else line += '-';
  fmt::format_to(std::back_inserter(line), FMT_COMPILE(" \"{}\" \"{}\""), referer ? *referer : "-",
                 agent ? *agent : "-");
  logline::write(logline::Stream::out, logline::Level::info, "gunicorn.access", line, request_id);
}

// The azmlinfsrv line for requests that reached the score or swagger view (CONTRACT.md 6.3).
// A streamed body's length is unknown when the line is written: "N/A", as the reference logs it.
void log_view_request(const http::Request& r, int status, double ms, std::optional<size_t> length,
                      std::string_view request_id) {
  std::string& line = io->log_scratch;
  line.clear();
  fmt::format_to(std::back_inserter(line), FMT_COMPILE("{} {} {} {:.3f}ms "), r.method, r.target, status, ms);
  if (length) fmt::format_to(std::back_inserter(line), FMT_COMPILE("{}"), *length);
  else line += "N/A";
  logline::write(logline::Stream::out, logline::Level::info, "azmlinfsrv", line, request_id);
}

double ms_since(uint64_t start_ns) { return static_cast<double>(monotonic_ns() - start_ns) / 1e6; }

// A JSON {"message": ...} response.
void respond_message(Connection* c, const http::Request& r, int status, std::string_view message,
                     const http::RequestIds* ids) {
  std::string body = http::json_message(message);
  start_response(c, r, status, http::reason_phrase_upper(status));
  http::add_header(c->out, "Content-Type", "application/json");
  http::add_header(c->out, "Content-Length", body.size());
  http::add_header(c->out, "x-ms-run-function-failed", "False");
  if (ids) add_request_headers(c, r, *ids);
  end_response(c, r, body);
  note_answer(c, r, status, r.method == "HEAD" ? 0 : body.size(), ids ? std::string_view(ids->request_id) : "");
}

MetricRoute metric_route_of(const http::Request& r);

// Errors the server finds in the bytes themselves: the connection cannot be trusted afterwards.

// An answer the server makes itself about the connection (malformed input, limits, no descriptors):
// JSON, gunicorn's title-case reason, and the connection closes after it.
void append_server_error(std::string& out, int status, std::string_view message) {
  std::string body = http::json_message(message);
  http::begin_response(out, status, http::reason_phrase(status));
  http::add_header(out, "Server", "azmlinfsrv");
  http::add_date_header(out);
  http::add_header(out, "Connection", "close");
  http::add_header(out, "Content-Type", "application/json");
  http::add_header(out, "Content-Length", body.size());
  http::end_head(out);
  out.append(body);
}

// Counted, but not timed: a request that never arrived completely has no duration to speak of.
void respond_transport_error(Connection* c, const http::ParseError& error) {
  if (!c->metrics)
    count_answer(io->metrics, c->parser.head_done() ? metric_route_of(c->parser.request()) : MetricRoute::other,
                 error.status);
  c->close_after_write = true;
  append_server_error(c->out, error.status, error.message);
  flush(c);
}

// ---- routes -----------------------------------------------------------------------------------------

enum class Route { health, score, swagger, not_found };

Route route_of(const http::Request& r) {
  std::string path = http::normalize_path(r.path());
  if (path == "/") return Route::health;
  if (path == "/score") return Route::score;
  if (path == "/swagger.json") return Route::swagger;
  return Route::not_found;
}

MetricRoute metric_route(Route route) {
  switch (route) {
    case Route::health: return MetricRoute::health;
    case Route::score: return MetricRoute::score;
    case Route::swagger: return MetricRoute::swagger;
    case Route::not_found: return MetricRoute::other;
  }
  return MetricRoute::other;
}

MetricRoute metric_route_of(const http::Request& r) { return metric_route(route_of(r)); }

bool method_routed(Route route, std::string_view m) {
  if (m == "GET" || m == "HEAD" || m == "OPTIONS") return true;
  return route == Route::score && m == "POST";
}

// Request-id checks run before every view (CONTRACT.md 3.3); false when they answered with 431.
bool check_request_ids(Connection* c, const http::Request& r, http::RequestIds& ids) {
  ids = http::resolve_request_ids(r);
  if (ids.outcome == http::RequestIds::Outcome::request_id_too_long) {
    respond_message(c, r, 431, "x-request-id must not exceed 100 characters", &ids);
    return false;
  }
  if (ids.outcome == http::RequestIds::Outcome::client_ids_too_long) {
    respond_message(c, r, 431, "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters", &ids);
    return false;
  }
  if (ids.deprecated_header_used)
    logline::write(logline::Stream::out, logline::Level::warning, "azmlinfsrv",
                   "x-ms-request-id header has been deprecated and will be removed from future versions of the "
                   "server. Please use x-ms-client-request-id.",
                   ids.request_id);
  return true;
}

// Flask's automatic OPTIONS answer for the health and swagger views.
void respond_options(Connection* c, const http::Request& r, const http::RequestIds& ids) {
  start_response(c, r, 200, "OK");
  http::add_header(c->out, "Content-Type", "text/html; charset=utf-8");
  http::add_header(c->out, "Content-Length", size_t{0});
  http::add_header(c->out, "Allow", "GET, HEAD, OPTIONS");
  add_request_headers(c, r, ids);
  end_response(c, r, "");
  note_answer(c, r, 200, 0, ids.request_id);
}

void respond_health(Connection* c, const http::Request& r, const http::RequestIds& ids) {
  if (r.method == "OPTIONS") return respond_options(c, r, ids);
  constexpr std::string_view body = "Healthy";
  start_response(c, r, 200, "OK");
  http::add_header(c->out, "Content-Type", "text/html; charset=utf-8");
  http::add_header(c->out, "Content-Length", body.size());
  add_request_headers(c, r, ids);
  end_response(c, r, body);
  note_answer(c, r, 200, r.method == "HEAD" ? 0 : body.size(), ids.request_id);
}

// GET /swagger.json[?version=V] from the documents built at boot (CONTRACT.md 5.1).
void respond_swagger(Connection* c, const http::Request& r, const http::RequestIds& ids, uint64_t received_ns) {
  if (r.method == "OPTIONS") return respond_options(c, r, ids);
  std::string asked = http::query_param(r.query(), "version").value_or("2");
  std::string version = asked == "2.0" ? "2" : asked == "3.0" ? "3" : asked;
  const auto& documents = bridge::swagger_documents();
  std::string available;
  const std::string* document = nullptr;
  for (const auto& [v, json] : documents) {
    available += (available.empty() ? "" : ", ") + v;
    if (v == version) document = &json;
  }
  int status = 200;
  std::string body;
  if (version != "2" && version != "3" && version != "3.1") {
    status = 404;
    body = http::json_message(fmt::format("Swagger version [{}] is not valid. Supported versions: [{}].", asked, available));
  } else if (!document) {
    status = 404;
    body = http::json_message(fmt::format(
        "Swagger version [{}] is not supported for the scoring script. Supported swagger versions: [{}].", asked,
        available));
  }
  const std::string& sent = document && status == 200 ? *document : body;
  start_response(c, r, status, http::reason_phrase_upper(status));
  http::add_header(c->out, "Content-Type", "application/json");
  http::add_header(c->out, "Content-Length", sent.size());
  add_request_headers(c, r, ids);
  end_response(c, r, sent);
  log_view_request(r, status, ms_since(received_ns), sent.size(), ids.request_id);
  note_answer(c, r, status, r.method == "HEAD" ? 0 : sent.size(), ids.request_id);
}

// OPTIONS and HEAD on /score when run() does not take the raw request (CONTRACT.md 3.5).
void respond_score_without_run(Connection* c, const http::Request& r, const http::RequestIds& ids,
                               uint64_t received_ns) {
  if (r.method == "OPTIONS") {
    start_response(c, r, 200, "OK");
    http::add_header(c->out, "Content-Type", "text/html; charset=utf-8");
    http::add_header(c->out, "Content-Length", size_t{0});
    http::add_header(c->out, "x-ms-run-function-failed", "False");
    add_request_headers(c, r, ids);
    end_response(c, r, "");
    log_view_request(r, 200, ms_since(received_ns), 0, ids.request_id);
    note_answer(c, r, 200, 0, ids.request_id);
    return;
  }
  constexpr std::string_view kMessage = "Method not allowed";
  log_view_request(r, 405, ms_since(received_ns), http::json_message(kMessage).size(), ids.request_id);
  respond_message(c, r, 405, kMessage, &ids);
}

// Chunked framing for HTTP/1.1; an HTTP/1.0 client gets the bytes as they are and a close at the end.
bool chunked(const http::Request& r) { return !(r.version_major == 1 && r.version_minor == 0); }

bool header_is_safe(std::string_view s) {
  for (char ch : s)
    if (ch == '\r' || ch == '\n' || ch == '\0') return false;
  return true;
}

void respond_scored(Connection* c, Job* job, const http::RequestIds& ids) {
  const http::Request& r = job->request;
  bridge::ScoreResponse& resp = job->response;
  for (const auto& [name, value] : resp.headers) {
    if (!header_is_safe(name) || !header_is_safe(value)) {
      resp.status = 500;
      std::string shown;
      http::append_json_string(shown, name);
      logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv",
                     fmt::format("run() returned a response header with CR, LF or NUL in it (\"{}\"); it was not "
                                 "sent. Remove line breaks from header names and values.",
                                 shown));
      resp.error_message = "An unexpected internal error occurred. Check the logs for more info.";
      resp.run_function_failed = false;
      resp.has_exec_ms = false;
      break;
    }
  }
  std::string error_body;
  if (!resp.error_message.empty()) error_body = http::json_message(resp.error_message);
  const std::string& body = resp.error_message.empty() ? resp.body : error_body;
  start_response(c, r, resp.status,
                 resp.reason.empty() || !resp.error_message.empty() ? http::reason_phrase_upper(resp.status)
                                                                    : std::string_view(resp.reason));
  if (!resp.error_message.empty()) {
    http::add_header(c->out, "Content-Type", "application/json");
    http::add_header(c->out, "Content-Length", body.size());
    http::add_header(c->out, "x-ms-run-function-failed", resp.run_function_failed ? "True" : "False");
  } else {
    size_t i = 0;
    if (!resp.headers.empty() && http::iequals(resp.headers[0].first, "content-type")) {
      http::add_header(c->out, resp.headers[0].first, resp.headers[0].second);
      i = 1;
    }
    if (!resp.stream) http::add_header(c->out, "Content-Length", body.size());
    else if (chunked(r)) http::add_header(c->out, "Transfer-Encoding", "chunked");
    else c->close_after_write = true;  // HTTP/1.0: the end of the body is the end of the connection
    for (; i < resp.headers.size(); ++i) {
      // Ours replace the script's: x-request-id is set, not added, and x-ms-server-version appears once.
      if (http::iequals(resp.headers[i].first, "x-request-id") && !ids.request_id.empty()) continue;
      if (http::iequals(resp.headers[i].first, "x-ms-server-version") && !io->server_version.empty()) continue;
      http::add_header(c->out, resp.headers[i].first, resp.headers[i].second);
    }
  }
  if (resp.has_exec_ms) {
    char ms[32];
    auto end = fmt::format_to_n(ms, sizeof ms, FMT_COMPILE("{:.3f}"), resp.exec_ms).out;
    http::add_header(c->out, "x-ms-run-fn-exec-ms", std::string_view(ms, static_cast<size_t>(end - ms)));
  }
  add_request_headers(c, r, ids);
  end_response(c, r, resp.stream ? std::string_view{} : std::string_view(body));  // chunks follow
  // The reference logs the view's line before the response goes out, the access line after.
  log_view_request(r, resp.status, job->handled_ms, resp.stream ? std::optional<size_t>() : body.size(),
                   ids.request_id);
  note_answer(c, r, resp.status, r.method == "HEAD" || resp.stream ? 0 : body.size(), ids.request_id);
}

// ---- the metrics listener ------------------------------------------------------------------------------

// Its own answers: no request ids, CORS or access log (scrapes and probes every few seconds would
// drown the log), and not counted in the metrics they report.
void respond_probe(Connection* c, const http::Request& r, int status, std::string_view content_type,
                   std::string_view body) {
  start_response(c, r, status, http::reason_phrase_upper(status));
  http::add_header(c->out, "Content-Type", content_type);
  http::add_header(c->out, "Content-Length", body.size());
  if (status == 405) http::add_header(c->out, "Allow", "GET, HEAD");
  end_response(c, r, body);
}

// Readiness, not liveness: a stopping worker is alive (it finishes its requests) but says here that new
// traffic should go elsewhere.
// Readiness is the pod's, not this worker's: a worker being replaced alone (reload, max_requests, a
// timeout) still says ready, since its replacements and siblings serve; only a stopping server says 503.
void respond_ready(Connection* c, const http::Request& r) {
  if (!io->table->stopping.load(std::memory_order_relaxed))
    return respond_probe(c, r, 200, "application/json", R"({"status": "ready"})");
  c->close_after_write = true;  // also before this worker has seen its TERM: the server is going away
  respond_probe(c, r, 503, "application/json",
                R"({"status": "stopping", "message": "The server is stopping: it finishes the requests it has and )"
                R"(takes no new ones. Send new requests to another replica."})");
}

void respond_metrics_listener(Connection* c, const http::Request& r) {
  std::string path = http::normalize_path(r.path());
  if (path != "/metrics" && path != "/ready")
    return respond_probe(c, r, 404, "application/json",
                         http::json_message("The metrics port serves only GET /metrics and GET /ready; scoring, "
                                            "swagger and liveness (GET /) are on the scoring port."));
  if (r.method != "GET" && r.method != "HEAD")
    return respond_probe(c, r, 405, "application/json",
                         http::json_message("The method is not allowed for the requested URL."));
  if (path == "/ready") return respond_ready(c, r);
  std::string body;
  render_metrics(body, *io->table, io->build, read_worker_memory(*io->table));
  respond_probe(c, r, 200, kMetricsContentType, body);
}

// Jobs are reused, so that a request's buffers (head, body, answer) serve the next one instead of being
// allocated and freed per request. Only this thread takes and returns them.
Job* acquire_job() {
  if (io->spare_jobs.empty()) return new Job;
  Job* job = io->spare_jobs.back();
  io->spare_jobs.pop_back();
  return job;
}

void release_job(Job* job) {
  if (io->spare_jobs.size() >= kSpareJobs) {
    delete job;
    return;
  }
  job->reset();
  io->spare_jobs.push_back(job);
}

// Answers a parsed request or hands it to Python; true when the answer is already in c->out.
bool handle_request(Connection* c) {
  http::Request& r = c->parser.request();
  uint64_t received_ns = monotonic_ns();
  c->had_request = true;
  if (c->metrics) {
    respond_metrics_listener(c, r);
    return true;
  }
  Route route = route_of(r);
  c->route = metric_route(route);
  c->received_ns = received_ns;
  if (route == Route::not_found) {
    respond_message(c, r, 404,
                    "The requested URL was not found on the server. If you entered the URL manually please check your "
                    "spelling and try again.",
                    nullptr);
    return true;
  }
  if (!method_routed(route, r.method)) {
    respond_message(c, r, 405, "The method is not allowed for the requested URL.", nullptr);
    return true;
  }
  http::RequestIds ids;
  if (!check_request_ids(c, r, ids)) return true;
  if (route == Route::health) {
    respond_health(c, r, ids);
    return true;
  }
  if (route == Route::swagger) {
    respond_swagger(c, r, ids, received_ns);
    return true;
  }
  if ((r.method == "OPTIONS" || r.method == "HEAD") && bridge::input_mode() != bridge::InputMode::raw) {
    respond_score_without_run(c, r, ids, received_ns);
    return true;
  }
  Job* job = acquire_job();
  job->connection = c;
  std::swap(job->request, r);  // the parser goes on with the spare job's emptied buffers
  job->received_ns = received_ns;
  job->header_views.reserve(job->request.headers.size());
  for (const http::Header& h : job->request.headers) job->header_views.emplace_back(h.name, h.value);
  job->ids = std::move(ids);
  job->remote_addr = c->peer;
  job->server_port = c->local_port;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0) job->fd = fd;
  c->job = job;
  watch_deadlines();
  io->for_python.push_back(job);
  return false;
}

// ---- reading ----------------------------------------------------------------------------------------

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(io->read_buffer, sizeof io->read_buffer);
}

void stop_reading(Connection* c) {
  if (!c->reading || c->lingering) return;  // a lingering connection reads only to discard
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->reading = false;
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

void start_reading(Connection* c) {
  if (c->reading || c->closing) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read) == 0) c->reading = true;
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = reinterpret_cast<Connection*>(stream);
  if (nread < 0) {
    // A half-close after a request (shutdown(SHUT_WR), as some clients do) still deserves the answer.
    if (nread == UV_EOF && (c->job || c->pending_writes > 0)) {
      c->peer_eof = true;
      c->close_after_write = true;
      stop_reading(c);
      return;
    }
    close_connection(c);
    return;
  }
  process_input(c, buf->base, static_cast<size_t>(nread));
  if (c->closing) return;
  // A client that sends but does not read would make us queue answers without bound: stop reading
  // until the socket takes what we wrote (on_written resumes).
  if (c->pending_writes > 0) stop_reading(c);
  update_wait(c, true);
}

// Parses and answers requests in order until the bytes run out or one waits for Python.
void process_input(Connection* c, const char* data, size_t len) {
  while (!c->closing) {
    if (c->job) {  // an answer is pending: keep the rest for later, in order
      c->leftover.append(data, len);
      // Reading on costs nothing per request (no epoll change); only a client that pipelines a lot
      // while run() works is paused, so what it sent ahead stays bounded.
      if (c->leftover.size() > kMaxPipelinedAhead) stop_reading(c);
      return;
    }
    size_t consumed = 0;
    http::ParseStatus status = c->parser.feed(data, len, &consumed);
    data += consumed;
    len -= consumed;
    switch (status) {
      case http::ParseStatus::need_more:
        flush(c);
        return;
      case http::ParseStatus::head_complete:
        c->out.append("HTTP/1.1 100 Continue\r\n\r\n");
        flush(c);
        continue;
      case http::ParseStatus::error:
        respond_transport_error(c, c->parser.error());
        return;
      case http::ParseStatus::request_ready:
        if (handle_request(c)) {
          c->parser.next();
          if (c->close_after_write) {
            flush(c);
            stop_reading(c);
            return;
          }
        }
        continue;
    }
  }
}

// A request's answer is complete: the connection goes on with pipelined bytes or reads again.
void finish_job(Connection* c, Job* job) {
  release_job(job);
  c->job = nullptr;
  if (c->closing) {  // the client went away while the answer was being made
    c->closing = false;
    close_connection(c);
    return;
  }
  c->parser.next();
  flush(c);
  if (c->close_after_write) return;
  std::string rest;
  rest.swap(c->leftover);
  process_input(c, rest.data(), rest.size());
  if (!c->job && !c->closing) start_reading(c);
  if (!c->closing) update_wait(c, false);
}

void write_chunk(Connection* c, const Job* job, std::string_view data) {
  if (c->closing || job->request.method == "HEAD") return;
  if (chunked(job->request)) fmt::format_to(std::back_inserter(c->out), "{:x}\r\n", data.size());
  c->out.append(data);
  if (chunked(job->request)) c->out.append("\r\n");
  flush(c);
}

void on_jobs_done(uv_async_t*) {
  std::vector<Completion>& done = io->done;
  {
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    done.swap(io->queue->done);
  }
  for (Completion& event : done) {
    Job* job = event.job;
    bool streamed = job->response.stream != nullptr;
    bool last_event = event.kind == Completion::Kind::end || event.kind == Completion::Kind::abort ||
                      (event.kind == Completion::Kind::response && !streamed);
    if (last_event) {
      --io->jobs_outstanding;
      set_in_flight(io->metrics, static_cast<uint32_t>(io->jobs_outstanding));
    }
    if (event.kind == Completion::Kind::response)  // even when its client was answered already: run() took this long
      observe_run_duration(io->metrics, static_cast<uint64_t>(job->handled_ms * 1e6));
    if (!job->connection) {  // answered already (stuck past a deadline); run()'s result comes too late
      if (last_event) release_job(job);
      continue;
    }
    Connection* c = job->connection;
    switch (event.kind) {
      case Completion::Kind::response:
        if (!c->closing) respond_scored(c, job, job->ids);
        if (!streamed) finish_job(c, job);
        else write_chunk(c, job, job->response.body);  // the first chunk came with the head
        break;
      case Completion::Kind::chunk:
        write_chunk(c, job, event.data);
        break;
      case Completion::Kind::end:
        if (!c->closing && job->request.method != "HEAD" && chunked(job->request)) c->out.append("0\r\n\r\n");
        finish_job(c, job);
        break;
      case Completion::Kind::abort:  // the body broke after the head went out: only cutting tells the client
        c->out.clear();
        c->close_after_write = true;
        c->closing = true;
        finish_job(c, job);
        break;
    }
  }
  done.clear();
}

void on_connection(uv_stream_t* listener, int status) {
  if (status == UV_EMFILE || status == UV_ENFILE) {
    note_accept_failure();
    return;
  }
  // While the whole server stops, the metrics listener stays open so that /ready can say so.
  bool metrics = listener == reinterpret_cast<uv_stream_t*>(io->metrics_listener);
  if (status < 0 || (io->draining && !metrics)) return;
  auto* c = new Connection(io->limits);
  uv_tcp_init(&io->loop, &c->tcp);
  c->metrics = metrics;
  ++io->connections;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    close_connection(c);
    return;
  }
  if (refuse_if_no_fds(c)) return;
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage addr;
  int addr_len = sizeof addr;
  char host[64] = "-";
  if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<struct sockaddr*>(&addr), &addr_len) == 0) {
    if (addr.ss_family == AF_INET) uv_ip4_name(reinterpret_cast<struct sockaddr_in*>(&addr), host, sizeof host);
    else if (addr.ss_family == AF_INET6) uv_ip6_name(reinterpret_cast<struct sockaddr_in6*>(&addr), host, sizeof host);
  }
  c->peer = host;
  if (uv_tcp_getsockname(&c->tcp, reinterpret_cast<struct sockaddr*>(&addr), &addr_len) == 0 &&
      addr.ss_family == AF_INET)
    c->local_port = ntohs(reinterpret_cast<struct sockaddr_in*>(&addr)->sin_port);
  start_reading(c);
  update_wait(c, false);
}

// ---- timeouts ---------------------------------------------------------------------------------------
// Every connection that waits for the client is in one list per kind of wait. All waits of a kind last
// equally long, so each list is ordered by deadline and the sweep only looks at list heads: O(1) per
// event and per expiry, one timer for the whole loop, no handle per connection.

enum Wait : uint8_t {
  kNone = 0,     // Python is working on its request, or it is closing
  kIdle = 1,     // keep-alive: between requests (close quietly)
  kHead = 2,     // a new connection, or a request's head arriving (408 when some of it came)
  kBody = 3,     // a request body arriving, or a response the client reads too slowly (408 / close)
  kLinger = 4,   // closing: reading what the client still sends
};

void unlink_wait(Connection* c) {
  if (c->wait == kNone) return;
  if (c->wait_prev) c->wait_prev->wait_next = c->wait_next;
  else io->wait_head[c->wait] = c->wait_next;
  if (c->wait_next) c->wait_next->wait_prev = c->wait_prev;
  else io->wait_tail[c->wait] = c->wait_prev;
  c->wait_prev = c->wait_next = nullptr;
  c->wait = kNone;
}

void link_wait(Connection* c, Wait kind) {
  c->wait = kind;
  c->wait_mark = c->responses;
  c->deadline_ns = monotonic_ns() + io->wait_ns[kind];
  c->wait_prev = io->wait_tail[kind];
  c->wait_next = nullptr;
  if (c->wait_prev) c->wait_prev->wait_next = c;
  else io->wait_head[kind] = c;
  io->wait_tail[kind] = c;
}

// Puts the connection in the wait its state calls for. The head and idle waits run from when they
// began; the body wait restarts whenever bytes move (progress), so only a stalled transfer expires.
void update_wait(Connection* c, bool progress) {
  Wait kind = kNone;
  if (c->closing) kind = kNone;
  else if (c->lingering) kind = kLinger;
  else if (c->job) kind = kNone;
  else if (c->pending_writes > 0) kind = kBody;
  else if (c->parser.in_progress()) kind = c->parser.head_done() ? kBody : kHead;
  else if (c->responses == 0) kind = kHead;  // a fresh connection before its first byte
  else kind = kIdle;
  // A request answered since the wait began starts a new wait (keep-alive idle, the next head).
  bool restart = (progress && kind == kBody) || c->wait_mark != c->responses;
  if (kind == c->wait && !restart) return;
  unlink_wait(c);
  if (kind != kNone) link_wait(c, kind);
}

void on_linger_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  if (nread < 0) close_connection(reinterpret_cast<Connection*>(stream));
}

void on_shutdown(uv_shutdown_t* req, int) { delete req; }

// After the last byte of a Connection: close answer: stop sending, keep reading (discarding) until the
// client closes or kLingerNs pass. Closing at once with unread input makes the kernel send a reset,
// and the client may lose the answer (a 413 sent while the body is still coming).
void linger(Connection* c) {
  if (c->closing || c->lingering) return;
  if (c->peer_eof) {
    close_connection(c);
    return;
  }
  stop_reading(c);
  c->lingering = true;
  auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, stream, on_shutdown) != 0) {
    delete req;
    close_connection(c);
    return;
  }
  if (uv_read_start(stream, on_alloc, on_linger_read) == 0) c->reading = true;
  update_wait(c, false);
}

void respond_timeout(Connection* c, std::string message) {
  http::ParseError error;
  error.status = 408;
  error.message = std::move(message);
  stop_reading(c);
  respond_transport_error(c, error);
}

void expire(Connection* c) {
  Wait kind = static_cast<Wait>(c->wait);
  unlink_wait(c);
  if (kind == kHead && c->parser.in_progress()) {
    respond_timeout(c, fmt::format("The request head did not arrive within {} ms; the connection is closed. Send the "
                                   "request line and headers without pauses, or raise --request_head_timeout_ms.",
                                   io->wait_ns[kHead] / 1000000));
  } else if (kind == kBody && c->pending_writes == 0) {
    respond_timeout(c, fmt::format("No bytes of the request body arrived for {} ms; the connection is closed. Send "
                                   "the body without pauses, or raise --request_body_timeout_ms.",
                                   io->wait_ns[kBody] / 1000000));
  } else {
    close_connection(c);  // idle, lingering, a fresh connection that sent nothing, or a client not reading
  }
}

void on_sweep(uv_timer_t*) {
  uint64_t now = monotonic_ns();
  for (int kind = kIdle; kind <= kLinger; ++kind) {
    while (io->wait_head[kind] && io->wait_head[kind]->deadline_ns <= now) expire(io->wait_head[kind]);
  }
}

void apply_transport_settings() {
  io->limits.max_request_line = tunable_value("LIMIT_REQUEST_LINE");
  io->limits.max_header_field = tunable_value("LIMIT_REQUEST_FIELD_SIZE");
  io->limits.max_header_count = tunable_value("LIMIT_REQUEST_FIELDS");
  io->limits.max_body = tunable_value("LIMIT_REQUEST_BODY");
  io->wait_ns[kHead] = tunable_value("REQUEST_HEAD_TIMEOUT_MS") * 1000000;
  io->wait_ns[kBody] = tunable_value("REQUEST_BODY_TIMEOUT_MS") * 1000000;
  io->wait_ns[kIdle] = tunable_value("KEEP_ALIVE_TIMEOUT_MS") * 1000000;
  io->wait_ns[kLinger] = kLingerNs;
  struct rlimit limit {};
  getrlimit(RLIMIT_NOFILE, &limit);
  io->fd_limit = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX / 2 : static_cast<uint64_t>(limit.rlim_cur);
  io->fd_reserve = std::min<uint64_t>(256, io->fd_limit / 8);
}

// Out of file descriptors. libuv, when accept() fails with EMFILE, silently accepts and closes with a
// descriptor it keeps in reserve, so the failure never reaches us. We stop earlier: a connection whose
// descriptor lands in the last fd_reserve below the limit gets a JSON 503 and is closed at once, which
// tells the client what happened and leaves descriptors for the script (files, threads) and for the
// connections already open, which go on being served. Logged once per burst.
bool refuse_if_no_fds(Connection* c) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) != 0 || fd < 0) return false;
  auto used = static_cast<uint64_t>(fd) + 1;
  if (used + io->fd_reserve <= io->fd_limit) {
    if (used + 2 * io->fd_reserve <= io->fd_limit) note_accept_recovered();
    return false;
  }
  note_accept_failure();
  if (!c->metrics) count_answer(io->metrics, MetricRoute::other, 503);
  append_server_error(c->out, 503,
                      "The server is out of file descriptors and cannot take more connections now. Retry shortly.");
  uv_buf_t buf = uv_buf_init(c->out.data(), static_cast<unsigned>(c->out.size()));
  uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1);  // best effort: a new socket takes it all
  close_connection(c);
  return true;
}

void note_accept_failure() {
  ++io->refused;
  if (io->accept_failing) return;
  io->accept_failing = true;
  logline::write(logline::Stream::err, logline::Level::error, "gunicorn.error",
                 fmt::format("Worker {} is out of file descriptors (open file limit {}, {} connections open): new "
                             "connections get a 503 and are closed until some close; open ones are still served. "
                             "Raise the limit (ulimit -n) or lower --keep_alive_timeout_ms.",
                             getpid(), io->fd_limit, io->connections));
}

void note_accept_recovered() {
  if (!io->accept_failing) return;
  io->accept_failing = false;
  logline::write(logline::Stream::err, logline::Level::info, "gunicorn.error",
                 fmt::format("Worker {} accepts connections again; {} were refused while it was out of file "
                             "descriptors.",
                             getpid(), io->refused));
  io->refused = 0;
}

// ---- stopping ---------------------------------------------------------------------------------------

// Connections the kernel accepted on the shared listening socket but no worker took yet are reset when
// its last descriptor closes (gunicorn #3397, TERM drops the accepted backlog). A draining worker
// takes them before closing its descriptor and answers them.
void adopt_backlog(uv_tcp_t* listener) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(listener), &fd) != 0) return;
  for (;;) {
    int client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) return;
    auto* c = new Connection(io->limits);
    uv_tcp_init(&io->loop, &c->tcp);
    ++io->connections;
    if (uv_tcp_open(&c->tcp, client) != 0) {
      ::close(client);
      close_connection(c);
      continue;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage addr;
    int addr_len = sizeof addr;
    char host[64] = "-";
    if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<struct sockaddr*>(&addr), &addr_len) == 0 &&
        addr.ss_family == AF_INET)
      uv_ip4_name(reinterpret_cast<struct sockaddr_in*>(&addr), host, sizeof host);
    c->peer = host;
    c->close_after_write = true;
    start_reading(c);
  }
}

bool is_listener(uv_handle_t* handle) {
  for (uv_tcp_t* l : io->listeners)
    if (reinterpret_cast<uv_handle_t*>(l) == handle) return true;
  return reinterpret_cast<uv_handle_t*>(io->metrics_listener) == handle;
}

void close_silent(uv_handle_t* handle, void*) {
  if (handle->type != UV_TCP || uv_is_closing(handle) || is_listener(handle)) return;
  auto* c = reinterpret_cast<Connection*>(handle);
  if (!c->job && !c->parser.in_progress() && c->pending_writes == 0) close_connection(c);
}

// The grace for connections that had sent nothing when the drain began is over.
void on_drain_grace(uv_timer_t*) { uv_walk(&io->loop, close_silent, nullptr); }

void close_idle(uv_handle_t* handle, void*) {
  if (handle->type != UV_TCP || is_listener(handle)) return;
  auto* c = reinterpret_cast<Connection*>(handle);
  // A connection that has not sent its first request yet was accepted a moment ago: its request is on
  // the way, so it gets drain_grace to arrive (closing it now would fail a request the client sent).
  if (!c->job && !c->parser.in_progress() && c->pending_writes == 0 && c->had_request) close_connection(c);
  else c->close_after_write = true;
}

void begin_drain() {
  if (io->draining) return;
  io->draining = true;
  for (uv_tcp_t* l : io->listeners) adopt_backlog(l);
  for (uv_tcp_t* l : io->listeners) uv_close(reinterpret_cast<uv_handle_t*>(l), nullptr);
  // A worker leaving alone (a reload, a replacement) stops taking probes, so they reach the workers that
  // stay; when the whole server stops, every worker keeps answering them: /ready says 503 until the end.
  if (!io->table->stopping.load()) close_metrics_listener();
  uv_walk(&io->loop, close_idle, nullptr);
  uv_timer_start(&io->drain_grace, on_drain_grace, kDrainGraceMs, 0);
  if (io->connections == 0) finish_drain();
}

void on_stop_signal(uv_signal_t* handle, int signum) {
  if (signum == SIGTERM) {
    begin_drain();
    return;
  }
  // INT and QUIT: leave at once, as gunicorn's workers do.
  (void)handle;
  logline::write(logline::Stream::err, logline::Level::info, "gunicorn.error",
                 fmt::format("Worker exiting (pid: {})", getpid()));
  logline::flush();
  _exit(kExitStopped);
}

// ---- answering without Python -----------------------------------------------------------------------

// Answers the client of the job run() is working on without waiting for run(); the Python thread keeps
// the Job until run() returns, if ever, and its result is then dropped. `expected`, when given, must
// still be the running job. False when there is nothing to answer (run() returned meanwhile).
bool answer_running_job(Job* expected, std::string_view message) {
  Job* job = nullptr;
  {
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    job = io->queue->running.load();
    if (!job || (expected && job != expected) || job->abandoned.load() || !job->connection) return false;
    job->abandoned.store(true);  // from now on the crash responder leaves its socket alone
  }
  Connection* c = job->connection;
  job->connection = nullptr;
  c->job = nullptr;
  c->leftover.clear();
  c->close_after_write = true;
  if (c->closing) {  // the client left while run() worked
    c->closing = false;
    close_connection(c);
    return true;
  }
  const http::Request& r = job->request;
  std::string body = http::json_message(message);
  start_response(c, r, 500, http::reason_phrase_upper(500));
  http::add_header(c->out, "Content-Type", "application/json");
  http::add_header(c->out, "Content-Length", body.size());
  http::add_header(c->out, "x-ms-run-function-failed", "True");
  add_request_headers(c, r, job->ids);
  end_response(c, r, body);
  log_view_request(r, 500, ms_since(job->received_ns), body.size(), job->ids.request_id);
  note_answer(c, r, 500, r.method == "HEAD" ? 0 : body.size(), job->ids.request_id);
  stop_reading(c);
  flush(c);
  return true;
}

void on_alarm_due(uv_timer_t*);

// The scoring timeout's SIGALRM (CONTRACT.md 2.4), sent to the Python thread when the running run()'s
// deadline has come, once per run(); its handler raises TimeoutError there. Within a tick of the deadline
// a one-shot timer waits for the exact millisecond.
void send_alarm_if_due() {
  uint64_t deadline = bridge::scoring_deadline_ns();
  if (deadline == 0 || deadline == io->alarmed_deadline || bridge::scoring_timeout_raised()) return;
  uint64_t now = monotonic_ns();
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
  if (!started || monotonic_ns() - started < limit || bridge::scoring_timeout_raised()) return;
  if (!answer_running_job(job, fmt::format("Scoring timeout after {} ms", io->scoring_timeout_ms))) return;
  logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv",
                 fmt::format("run() is still running {} ms after the scoring timeout of {} ms (SCORING_TIMEOUT_MS): "
                             "it is stuck in native code, which the TimeoutError cannot interrupt. Its stack is "
                             "below. The client got the scoring-timeout answer; worker {} stops taking requests "
                             "and a new worker replaces it.",
                             kStuckGraceNs / 1000000, io->scoring_timeout_ms, getpid()));
  // Then the stacks: faulthandler, on the Python thread, shows the line of the native call. Not before
  // the answer: its signal interrupts a blocking call, and run() might then unwind and answer itself.
  kill(getpid(), kSignalDumpStacks);
  io->slot->replace_requested.store(1);
  io->exit_when_drained = true;
  begin_drain();
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
  const char* limit = getenv("WORKER_TIMEOUT");
  answer_running_job(nullptr, fmt::format("The worker timed out: run() took longer than WORKER_TIMEOUT ({} s), so "
                                          "the worker is being replaced. The server log shows the Python stack "
                                          "where run() was.",
                                          limit && *limit ? limit : "300"));
  begin_drain();
}

void on_heartbeat(uv_timer_t*) { io->slot->heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed); }

// Request lines wait in the I/O thread's buffer and go out once per loop pass, before the loop blocks.
void on_loop_pass_end(uv_prepare_t*) { logline::flush(); }

// Right after the loop has handled what the poll returned: all of it goes to Python in one hand-off,
// so a burst of requests costs the Python thread one wake-up, not one each.
void on_poll_handled(uv_check_t*) {
  if (io->for_python.empty()) return;
  io->queue->push(io->for_python);
  io->for_python.clear();
}

void io_main() {
  logline::buffer_this_thread();
  uv_prepare_start(&io->flush_logs, on_loop_pass_end);
  uv_check_start(&io->hand_off, on_poll_handled);
  uv_run(&io->loop, UV_RUN_DEFAULT);
  logline::flush();
}

}  // namespace

void start_io(const Options& options, JobQueue& queue) {
  io = new Io;
  io->queue = &queue;
  io->table = options.table;
  io->slot = &options.table->slots[options.slot];
  attach_metrics(io->metrics, io->slot->metrics);
  io->build.version = AZMLINFSRV_VERSION;
  io->build.python = bridge::python_version();
  if (const char* v = getenv("HTTP_X_MS_SERVER_VERSION")) io->server_version = v;
  if (const char* v = getenv("AML_CORS_ORIGINS")) io->cors = http::CorsPolicy::parse(v);
  uv_loop_init(&io->loop);
  uv_async_init(&io->loop, &io->done_async, on_jobs_done);
  uv_prepare_init(&io->loop, &io->flush_logs);
  uv_check_init(&io->loop, &io->hand_off);
  queue.done_async = &io->done_async;
  for (int fd : options.listen_fds) {
    auto* l = new uv_tcp_t;
    uv_tcp_init(&io->loop, l);
    if (uv_tcp_open(l, fd) != 0 || uv_listen(reinterpret_cast<uv_stream_t*>(l), kBacklog, on_connection) != 0) {
      logline::write(logline::Stream::out, logline::Level::critical, "azmlinfsrv",
                     fmt::format("Worker {} cannot accept on the listening socket (fd {}); it exits.", getpid(), fd));
      _exit(1);
    }
    io->listeners.push_back(l);
  }
  if (options.metrics_fd >= 0) {
    auto* l = new uv_tcp_t;
    uv_tcp_init(&io->loop, l);
    if (uv_tcp_open(l, options.metrics_fd) != 0 ||
        uv_listen(reinterpret_cast<uv_stream_t*>(l), kBacklog, on_connection) != 0) {
      logline::write(logline::Stream::out, logline::Level::critical, "azmlinfsrv",
                     fmt::format("Worker {} cannot accept on the metrics listener (fd {}); it exits.", getpid(),
                                 options.metrics_fd));
      _exit(1);
    }
    io->metrics_listener = l;
  }
  uv_signal_init(&io->loop, &io->sigterm);
  uv_signal_init(&io->loop, &io->sigint);
  uv_signal_init(&io->loop, &io->sigquit);
  uv_signal_start(&io->sigterm, on_stop_signal, SIGTERM);
  uv_signal_start(&io->sigint, on_stop_signal, SIGINT);
  uv_signal_start(&io->sigquit, on_stop_signal, SIGQUIT);
  uv_timer_init(&io->loop, &io->heartbeat);
  uv_timer_start(&io->heartbeat, on_heartbeat, 0, 1000);
  io->scoring_timeout_ms = bridge::scoring_timeout_ms();
  io->deadline_tick_ms = static_cast<uint64_t>(std::clamp(io->scoring_timeout_ms, 1L, long{kDeadlineTickMs}));
  io->python_thread = pthread_self();  // start_io runs on it
  uv_timer_init(&io->loop, &io->deadline_watch);
  uv_timer_init(&io->loop, &io->alarm_due);
  uv_timer_init(&io->loop, &io->drain_grace);
  uv_timer_init(&io->loop, &io->exit_timer);
  uv_signal_init(&io->loop, &io->timed_out);
  uv_signal_start(&io->timed_out, on_timed_out, kSignalAnswerTimedOut);
  apply_transport_settings();
  uv_timer_init(&io->loop, &io->sweep);
  uv_timer_start(&io->sweep, on_sweep, kSweepMs, kSweepMs);

  // The loop thread takes no signals: they reach the Python thread (SIGALRM, which this thread sends it
  // for the scoring timeout) and libuv's handlers forward the stop signals to the loop through its pipe.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  io->thread = std::thread(io_main);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void join_io() {
  if (io->thread.joinable()) io->thread.join();
}

}  // namespace worker
