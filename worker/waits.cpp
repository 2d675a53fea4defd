// The wait lists. Every connection that waits for its client is in one list per kind of wait. All waits
// of a kind last equally long, so each list is ordered by deadline and the sweep (connection.cpp) only
// looks at list heads: O(1) per event and per expiry, one timer for the whole loop, no handle per
// connection.
#include "io_internal.h"

namespace worker {

namespace {

void link_wait(Connection* c, Wait kind) {
  c->wait = kind;
  c->wait_mark = c->responses;
  c->deadline_ns = base::monotonic_ns() + io->wait_ns[kind];
  c->wait_prev = io->wait_tail[kind];
  c->wait_next = nullptr;
  if (c->wait_prev) c->wait_prev->wait_next = c;
  else io->wait_head[kind] = c;
  io->wait_tail[kind] = c;
}

}  // namespace

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

}  // namespace worker
