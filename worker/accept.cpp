// Accepting connections. A listening socket is polled (uv_poll_t, accept4 by hand) rather than given
// to uv_listen, so that a worker can stop taking connections: while its Python thread has work and
// another worker is idle, it leaves the scoring port's queue to that one, and a request does not wait
// behind a run() while another worker could start it. Only when every other worker has been busy for a
// while (kOthersBusyNs) does a busy worker take connections again: GET / is then still answered at once
// by its I/O thread, and a score request waits there for its run() as it would anywhere.
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_internal.h"

namespace worker {

namespace {

// Every other worker has had work this long: none is about to be free, so this one takes connections.
constexpr uint64_t kOthersBusyNs = 20'000'000;
// How often a busy worker looks again whether it should take connections.
constexpr uint64_t kPaceCheckMs = 5;
// Out of descriptors: the connections wait in the kernel's queue this long before the next try.
constexpr uint64_t kAcceptRetryMs = 100;

// Another worker serves and either has nothing to do or began its work recently.
bool another_worker_free_soon(uint64_t now) {
  for (const Slot& s : io->table->slots) {
    if (&s == io->slot || s.state.load(std::memory_order_relaxed) != SlotState::ready) continue;
    uint64_t since = s.busy_since_ns.load(std::memory_order_relaxed);
    if (since == 0 || (since > 1 && now - since < kOthersBusyNs)) return true;
  }
  return false;
}

bool takes_connections(const Listener* l) {
  return !l->paced || !worker_has_work() || !another_worker_free_soon(base::monotonic_ns());
}

void on_readable(uv_poll_t* handle, int status, int events);

void start_polling(Listener* l) {
  if (l->polling || l->closed) return;
  if (uv_poll_start(&l->poll, UV_READABLE, on_readable) == 0) l->polling = true;
}

void stop_polling(Listener* l) {
  if (!l->polling) return;
  uv_poll_stop(&l->poll);
  l->polling = false;
}

void on_accept_retry(uv_timer_t*) { pace_accepting(); }
void on_pace_check(uv_timer_t*) {
  move_waiting_jobs();
  pace_accepting();
}

void on_readable(uv_poll_t* handle, int status, int) {
  auto* l = static_cast<Listener*>(handle->data);
  if (status < 0 || (io->draining && !l->metrics)) return;
  // Polls stop here, when they fire at a worker that should not take (not each time the worker's state
  // changes): in a busy server that changes every few microseconds, and each stop and start is a syscall.
  if (l->handoff ? worker_has_work() : !takes_connections(l)) {
    stop_polling(l);
    return;
  }
  if (l->handoff) {
    while (!worker_has_work() && take_handed_off(false)) {
    }
    return;
  }
  for (;;) {
    int fd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // The poll is level-triggered: trying again at once would spin on the waiting connections.
        note_accept_failure();
        stop_polling(l);
        uv_timer_start(&io->accept_retry, on_accept_retry, kAcceptRetryMs, 0);
      }
      return;  // EAGAIN: the queue is empty, or another worker took the connection
    }
    Connection* c = open_connection(fd, l->metrics);
    if (!c) continue;
    start_reading(c);
    update_wait(c, false);
    // The request usually came with the connection: reading it now tells whether this worker has work
    // before it takes the next connection.
    read_now(c);
    if (!takes_connections(l)) {
      stop_polling(l);
      return;
    }
  }
}

Listener* new_listener(int fd, bool paced, bool metrics, bool handoff = false) {
  auto* l = new Listener;
  l->fd = fd;
  l->paced = paced;
  l->metrics = metrics;
  l->handoff = handoff;
  l->poll.data = l;
  if (uv_poll_init_socket(&io->loop, &l->poll, fd) != 0) {
    delete l;
    return nullptr;
  }
  return l;
}

}  // namespace

bool listen_on(const std::vector<int>& fds, int paced_fd, int metrics_fd, const int handoff_fds[2]) {
  uv_timer_init(&io->loop, &io->accept_retry);
  uv_timer_init(&io->loop, &io->pace_check);
  for (int fd : fds) {
    Listener* l = new_listener(fd, fd == paced_fd, false);
    if (!l) return false;
    io->listeners.push_back(l);
  }
  if (metrics_fd >= 0) {
    io->metrics_listener = new_listener(metrics_fd, false, true);
    if (!io->metrics_listener) return false;
  }
  if (handoff_fds[0] >= 0 && handoff_fds[1] >= 0) {
    io->handoff_queue = new_listener(handoff_fds[1], false, false, true);
    if (!io->handoff_queue) return false;
    io->handoff_send = handoff_fds[0];
    io->handoff_recv = handoff_fds[1];
  }
  return true;
}

// The worker's state for the others to read (Slot::busy_since_ns), then the polls it may take from again
// (on_readable stops them). Runs at the end of every loop pass, and every kPaceCheckMs while the worker
// has work.
void pace_accepting() {
  uint64_t since = io->slot->busy_since_ns.load(std::memory_order_relaxed);
  uint64_t now_since = io->draining ? 1 : !worker_has_work() ? 0 : since > 1 ? since : base::monotonic_ns();
  if (now_since != since) io->slot->busy_since_ns.store(now_since, std::memory_order_relaxed);
  bool watching = uv_is_active(reinterpret_cast<uv_handle_t*>(&io->pace_check));
  if (worker_has_work() && !watching) uv_timer_start(&io->pace_check, on_pace_check, kPaceCheckMs, kPaceCheckMs);
  else if (!worker_has_work() && watching) uv_timer_stop(&io->pace_check);
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&io->accept_retry))) return;
  for (Listener* l : io->listeners)
    if (!l->polling && takes_connections(l)) start_polling(l);
  if (io->metrics_listener) start_polling(io->metrics_listener);
  // Near the descriptor limit a taken connection would be refused (or its descriptor lost): others take.
  if (io->handoff_queue && !worker_has_work() && !io->draining && !io->accept_failing &&
      !io->handoff_queue->polling) {
    // Stopped, so something came while this worker had work: it is older than any new connection or
    // request, so it goes first (else a busy server's connections would keep it waiting).
    while (!worker_has_work() && take_handed_off(false)) {
    }
    start_polling(io->handoff_queue);
  }
}

// Connections the kernel accepted on the shared listening socket but no worker took yet are reset when
// its last descriptor closes (gunicorn #3397, TERM drops the accepted backlog). A draining worker
// takes them before closing its descriptor and answers them.
void adopt_backlog() {
  for (Listener* l : io->listeners) {
    for (;;) {
      int fd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      Connection* c = open_connection(fd, false);
      if (!c) continue;
      c->close_after_write = true;
      start_reading(c);
    }
  }
}

bool adopt_handed_off() {
  // When only this worker leaves, the others take what is queued. When all leave, no worker hands off
  // any more, and a worker takes what waits once it has no work of its own (at its drain's start, or
  // when its last connection closes), so the first free one answers them and none is left behind.
  if (!io->handoff_queue || !io->table->stopping.load() || worker_has_work() || io->exit_when_drained ||
      !io->python_unavailable.empty())
    return false;
  stop_polling(io->handoff_queue);
  bool took = false;
  while (!worker_has_work() && take_handed_off(true)) took = true;  // one to run: the next when it is done
  return took;
}

void close_listener(Listener* l) {
  if (!l || l->closed) return;
  stop_polling(l);
  l->closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), nullptr);
  ::close(l->fd);  // the poll handle does not own it; the socket goes once every process closed it
}

}  // namespace worker
