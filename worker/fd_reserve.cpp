// Out of file descriptors. libuv, when accept() fails with EMFILE, silently accepts and closes with a
// descriptor it keeps in reserve, so the failure never reaches us. We stop earlier: a connection whose
// descriptor lands in the last fd_reserve below the limit gets a JSON 503 and is closed at once, which
// tells the client what happened and leaves descriptors for the script (files, threads) and for the
// connections already open, which go on being served. Logged once per burst.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"

namespace worker {

namespace {

void note_accept_recovered() {
  if (!io->accept_failing) return;
  io->accept_failing = false;
  logline::write(logline::Stream::err, logline::Level::info, "gunicorn.error",
                 fmt::format("Worker {} accepts connections again; {} were refused while it was out of file "
                             "descriptors.",
                             getpid(), io->refused));
  io->refused = 0;
}

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
  uv_buf_t buf = write_buf(c->out.data(), c->out.size());
  uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1);  // best effort: a new socket takes it all
  close_connection(c);
  return true;
}

}  // namespace

void measure_fd_limit() {
  struct rlimit limit {};
  getrlimit(RLIMIT_NOFILE, &limit);
  io->fd_limit = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX / 2 : static_cast<uint64_t>(limit.rlim_cur);
  io->fd_reserve = std::min<uint64_t>(256, io->fd_limit / 8);
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

Connection* open_connection(int fd, bool metrics) {
  auto* c = new Connection(io->limits);
  uv_tcp_init(&io->loop, &c->tcp);
  c->metrics = metrics;
  ++io->connections;
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    ::close(fd);
    close_connection(c);
    return nullptr;
  }
  if (refuse_if_no_fds(c)) return nullptr;
  uv_tcp_nodelay(&c->tcp, 1);
  identify_peer(c);
  return c;
}

}  // namespace worker
