// Handing a connection to another worker. A score request that would wait for this worker's Python
// thread goes, with its connection, into one queue that all workers share (the socket pair the arbiter
// made, worker::Options::handoff_fds) once the run() ahead of it has gone on a while (kMoveAfterRunNs):
// when it arrives, or on the next check (move_waiting_jobs) for one that came just as the run() began.
// The connection's descriptor travels as SCM_RIGHTS, and the
// bytes read from it so far (the request, and any sent after it) as the message. A worker takes from
// the queue only while it has no work (accept.cpp polls it then), so the request starts in the first
// worker that is free, in the order the requests came, and the connection stays with that worker.
//
// The kernel holds a queued descriptor until a worker takes it: a worker that dies after handing a
// connection over loses nothing. Only a connection with nothing else under way moves (no answer being
// written, no "100 Continue" sent), so its answers stay in order.
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "../log/log.h"

#include "io_internal.h"

namespace worker {

namespace {

// A request that waits behind a run() moves once that run() has gone on this long: behind a short one
// (a hello world takes microseconds) it waits less than a move costs, and moving every request of a
// saturated server would cost it a third of its throughput.
constexpr uint64_t kMoveAfterRunNs = 1'000'000;

bool in_a_long_run() {
  uint64_t started = io->slot->run_started_ns.load(std::memory_order_relaxed);
  return started != 0 && base::monotonic_ns() - started >= kMoveAfterRunNs;
}

// Another worker serves: the queue has a taker, now or once it is free.
bool another_worker_ready() {
  for (const Slot& s : io->table->slots)
    if (&s != io->slot && s.state.load(std::memory_order_relaxed) == SlotState::ready) return true;
  return false;
}

// Nothing else is under way on the connection: no answer being written, no "100 Continue" sent, no
// close decided. `job`: the request's own job, waiting for the Python thread, or null.
bool movable(const Connection* c, const Job* job) {
  return !c->metrics && c->request_bytes_whole && c->job == job && c->pending_writes == 0 && c->out.empty() &&
         !c->peer_eof && !c->lingering && !c->close_after_write && !c->closing;
}

// The queue message: the connection's descriptor, its request's bytes and `rest`. False when the queue
// is full (the caller keeps the request); true when it went, and the connection is closed here.
bool send_connection(Connection* c, std::string_view rest) {
  if (c->request_bytes.size() + rest.size() > kHandOffMax) return false;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) != 0) return false;
  struct iovec parts[2] = {{c->request_bytes.data(), c->request_bytes.size()},
                           {const_cast<char*>(rest.data()), rest.size()}};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = parts;
  msg.msg_iovlen = rest.empty() ? 1 : 2;
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
  if (sent < 0) return false;
  // The queued descriptor keeps the socket open; ours closes without a word to the client.
  forget_request_bytes(c);
  c->leftover.clear();
  close_connection(c);
  return true;
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
  // A keep-alive connection that once sent a large body does not keep 64 KiB for the rest of its life.
  if (c->request_bytes.capacity() > 4096) std::string().swap(c->request_bytes);
  else c->request_bytes.clear();
  c->request_bytes_whole = true;
}

bool hand_off(Connection* c, const char* rest, size_t rest_len) {
  if (io->handoff_send < 0 || io->draining || !worker_has_work() || !movable(c, nullptr)) return false;
  if (!in_a_long_run() || !another_worker_ready()) return false;
  return send_connection(c, std::string_view(rest, rest_len));
}

void move_waiting_jobs() {
  if (io->handoff_send < 0 || io->draining || !in_a_long_run() || !another_worker_ready()) return;
  std::deque<Job*> waiting;
  {
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    waiting.swap(io->queue->pending);
  }
  if (waiting.empty()) return;
  std::deque<Job*> staying;
  for (Job* job : waiting) {
    Connection* c = job->connection;
    if (!c || !movable(c, job)) {
      staying.push_back(job);
      continue;
    }
    c->job = nullptr;  // as if never read here: the connection and its bytes go, the job comes back
    if (!send_connection(c, c->leftover)) {
      c->job = job;
      staying.push_back(job);
      continue;
    }
    --io->jobs_outstanding;
    set_in_flight(io->metrics, static_cast<uint32_t>(io->jobs_outstanding));
    release_job(job);
  }
  {
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    io->queue->pending.insert(io->queue->pending.begin(), staying.begin(), staying.end());
  }
  io->queue->wake_python.notify_one();
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
  if (fd < 0) {
    // The kernel could not give this process the descriptor (it is at its open-file limit): the client's
    // connection is gone with it. accept.cpp stops taking from the queue near the limit; say it when not.
    logline::write(logline::Stream::err, logline::Level::error, "gunicorn.error",
                   fmt::format("Worker {} lost a connection another worker handed over: it could not receive its "
                               "descriptor (out of file descriptors?). Raise the limit (ulimit -n).",
                               getpid()));
    return true;
  }
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
