// The wait lists. Every connection that waits for its client is in one list per kind of wait. All waits
// of a kind last equally long, so each list is ordered by deadline and the sweep (connection.cpp) only
// looks at list heads: O(1) per event and per expiry, one timer for the whole loop, no handle per
// connection.
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include "io_internal.h"

namespace worker {

namespace {

void link_wait(Connection* c, Wait kind) {
  c->wait = kind;
  c->wait_mark = c->responses;
  c->deadline_ns = base::monotonic_ns() + io->wait_ns[kind];
  // A write timeout's baseline, for the expiry to tell a slow reader from one that stopped (a system call,
  // only when the socket did not take an answer at once).
  if (kind == kBody && c->pending_writes > 0) c->wait_delivered = bytes_delivered(c);
  c->wait_prev = io->wait_tail[kind];
  c->wait_next = nullptr;
  if (c->wait_prev) c->wait_prev->wait_next = c;
  else io->wait_head[kind] = c;
  io->wait_tail[kind] = c;
}

}  // namespace

// Handed out, less what waits in libuv's write queue, less what the kernel still holds (not sent, or sent
// and not acknowledged: SIOCOUTQ). Neither queue alone would do: the kernel's send buffer (megabytes)
// drains as the client reads long before it takes more from libuv.
uint64_t bytes_delivered(Connection* c) {
  uint64_t in_libuv = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp));
  int in_kernel = 0;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) != 0 || ioctl(fd, SIOCOUTQ, &in_kernel) != 0 ||
      in_kernel < 0)
    in_kernel = 0;  // then progress is what the socket took from libuv's queue
  uint64_t held = in_libuv + static_cast<uint64_t>(in_kernel);
  return c->bytes_out > held ? c->bytes_out - held : 0;
}

void unlink_wait(Connection* c) {
  if (c->wait == kNone) return;
  if (c->wait_prev) c->wait_prev->wait_next = c->wait_next;
  else io->wait_head[c->wait] = c->wait_next;
  if (c->wait_next) c->wait_next->wait_prev = c->wait_prev;
  else io->wait_tail[c->wait] = c->wait_prev;
  c->wait_prev = c->wait_next = nullptr;
  c->wait = kNone;
}

// Puts the connection in the wait its state calls for. The head and idle waits run from when they
// began; the body wait restarts whenever bytes move (progress), so only a stalled transfer expires. An
// answer the socket has not taken is a body wait too (the write timeout), a stream's included; a request
// with Python, or a stream waiting for its generator, waits for no client.
void update_wait(Connection* c, bool progress) {
  Wait kind = kNone;
  if (c->closing) kind = kNone;
  else if (c->lingering) kind = kLinger;
  else if (c->job && !(stream_open(c) && c->pending_writes > 0)) kind = kNone;
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

}  // namespace worker
