// Stopping a worker: on TERM it takes the listen backlog, closes its listeners, closes idle connections
// (or, when only this worker leaves, answers their next request with Connection: close),
// gives just-accepted ones a moment for their request, answers everything in progress with
// Connection: close, and leaves when its last connection is gone. INT and QUIT leave at once.
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"

namespace worker {

namespace {

void on_exit_timer(uv_timer_t*) { exit_worker(); }

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
    identify_peer(c);
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
  bool idle = !c->job && !c->parser.in_progress() && c->pending_writes == 0 && c->had_request;
  // When the whole server stops, an idle keep-alive connection has nowhere else to go: close it. A worker
  // that leaves while the server goes on (a reload, max_requests, TTOU) keeps it for the grace instead:
  // a busy keep-alive client may be sending its next request right now, and a close would reset that
  // request (the client cannot tell whether it ran). The request is answered with Connection: close,
  // and the client's next one goes to a worker that stays. A connection that has not sent its first
  // request yet was accepted a moment ago: its request is on the way, so it gets the grace too.
  if (idle && io->table->stopping.load()) close_connection(c);
  else c->close_after_write = true;
}

}  // namespace

void exit_worker() {
  logline::write(logline::Stream::err, logline::Level::info, "gunicorn.error",
                 fmt::format("Worker exiting (pid: {})", getpid()));
  logline::flush();
  _exit(kExitStopped);
}

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

void begin_drain() {
  if (io->draining) return;
  io->draining = true;
  for (uv_tcp_t* l : io->listeners) adopt_backlog(l);
  for (uv_tcp_t* l : io->listeners) uv_close(reinterpret_cast<uv_handle_t*>(l), nullptr);
  // A worker leaving alone (a reload, a replacement) stops taking probes, so they reach the workers that
  // stay; when the whole server stops, every worker keeps answering them: /ready says 503 until the end.
  if (!io->table->stopping.load()) close_metrics_listener();
  uv_walk(&io->loop, close_idle, nullptr);
  uv_timer_start(&io->drain_grace, on_drain_grace, io->table->stopping.load() ? kDrainGraceMs : kRetireGraceMs, 0);
  if (io->connections == 0) finish_drain();
}

void on_stop_signal(uv_signal_t*, int signum) {
  if (signum == SIGTERM) {
    begin_drain();
    return;
  }
  exit_worker();  // INT and QUIT: leave at once, as gunicorn's workers do
}

}  // namespace worker
