// Handing a connection to another worker. A score request read while this worker's Python thread has
// work goes, with its connection, into one queue that all workers share (the socket pair the arbiter
// made, worker::Options::handoff_fds): the connection's descriptor travels as SCM_RIGHTS, and the bytes
// read from it so far (the request, and any sent after it) as the message. A worker takes from the
// queue only while it has no work (accept.cpp polls it then), so the request starts in the first worker
// that is free, in the order the requests came, and the connection stays with that worker.
//
// The kernel holds a queued descriptor until a worker takes it: a worker that dies after handing a
// connection over loses nothing. Only a connection with nothing else under way moves (no answer being
// written, no "100 Continue" sent), so its answers stay in order.
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>

#include "io_internal.h"

namespace worker {

namespace {

bool another_worker_ready() {
  for (const Slot& s : io->table->slots)
    if (&s != io->slot && s.state.load(std::memory_order_relaxed) == SlotState::ready) return true;
  return false;
}

bool movable(const Connection* c) {
  return !c->metrics && c->request_bytes_whole && !c->job && c->pending_writes == 0 && c->out.empty() &&
         !c->peer_eof && !c->lingering && !c->close_after_write && !c->closing;
}

}  // namespace

void keep_request_bytes(Connection* c, const char* data, size_t len) {
  if (io->handoff_send < 0 || !c->request_bytes_whole || len == 0) return;
  if (c->request_bytes.size() + len > kHandOffMax) {
    c->request_bytes_whole = false;  // too large to move: its worker answers it
    return;
  }
  c->request_bytes.append(data, len);
}

void forget_request_bytes(Connection* c) {
  c->request_bytes.clear();
  c->request_bytes_whole = true;
}

bool hand_off(Connection* c, const char* rest, size_t rest_len) {
  if (io->handoff_send < 0 || io->draining || !worker_has_work() || !movable(c)) return false;
  if (c->request_bytes.size() + rest_len > kHandOffMax || !another_worker_ready()) return false;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) != 0) return false;
  struct iovec parts[2] = {{c->request_bytes.data(), c->request_bytes.size()}, {const_cast<char*>(rest), rest_len}};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = parts;
  msg.msg_iovlen = rest_len ? 2 : 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  ssize_t sent;
  do sent = sendmsg(io->handoff_send, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return false;  // the queue is full: this worker answers it after all
  // The queued descriptor keeps the socket open; ours closes without a word to the client.
  forget_request_bytes(c);
  close_connection(c);
  return true;
}

bool take_handed_off(bool close_after_answer) {
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct iovec part = {io->read_buffer, sizeof io->read_buffer};
  struct msghdr msg {};
  msg.msg_iov = &part;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(io->handoff_recv, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return false;  // nothing queued, or another worker took it first
  int fd = -1;
  for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(cm), sizeof(int));
  if (fd < 0) return true;  // cannot happen: every message carries its connection
  Connection* c = open_connection(fd, false);
  if (!c) return true;
  c->had_request = true;
  c->close_after_write = close_after_answer;
  start_reading(c);
  update_wait(c, false);
  uv_buf_t buf = uv_buf_init(io->read_buffer, static_cast<unsigned>(n));
  io->read_cb(reinterpret_cast<uv_stream_t*>(&c->tcp), n, &buf);
  return true;
}

}  // namespace worker
