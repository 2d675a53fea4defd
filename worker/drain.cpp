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

void close_silent(uv_handle_t* handle, void*) {
  if (handle->type != UV_TCP || uv_is_closing(handle)) return;  // connections only, not the listeners' polls
  auto* c = reinterpret_cast<Connection*>(handle);
  if (!c->job && !c->parser.in_progress() && c->pending_writes == 0) close_connection(c);
}

// The grace for connections that had sent nothing when the drain began is over.
void on_drain_grace(uv_timer_t*) { uv_walk(&io->loop, close_silent, nullptr); }

void close_idle(uv_handle_t* handle, void*) {
  if (handle->type != UV_TCP) return;
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

void close_metrics_listener() { close_listener(io->metrics_listener); }

// The last connection of a draining worker is gone: the Python thread may stop, and so may the loop.
void finish_drain() {
  // One more to answer first: this runs again when its connection closes.
  if (adopt_handed_off() && io->connections > 0) return;
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
  adopt_backlog();
  adopt_handed_off();
  for (Listener* l : io->listeners) close_listener(l);
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
