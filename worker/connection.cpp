// Transport: reading, writing and closing a connection, the linger after a Connection: close answer,
// the server's own answers about the bytes it got (malformed, over a limit, too slow), and the sweep
// that ends expired waits. Nothing here knows routes or Python: bytes read go to io->read_cb.
#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

#include <utility>

#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"

namespace worker {

namespace {

struct WriteRequest {
  uv_write_t req;
  std::string data;  // what the socket did not take at once of c->out (copied: c->out is reused)
  std::string part;  // a stream's part, moved here when the socket did not take it at once
  Job* job = nullptr;  // whose bytes this write reads, or whose stream's window waits for it
  uint64_t stream_bytes = 0;
};

void on_closed(uv_handle_t* handle) {
  auto* c = reinterpret_cast<Connection*>(handle);
  delete c;
  --io->connections;
  if (io->draining && io->connections == 0) io->on_drained();
}

void on_written(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteRequest*>(req);
  auto* c = static_cast<Connection*>(req->data);
  Job* job = w->job;
  uint64_t stream_bytes = w->stream_bytes;
  delete w;
  --c->pending_writes;
  if (job) {
    if (c->writing_for == job && job->writes == 1) c->writing_for = nullptr;
    job_written(job, stream_bytes);  // may release the job
  }
  if (status < 0) close_connection(c);
  else if (c->close_after_write && c->pending_writes == 0 && !stream_open(c) && !c->awaiting_continued_body) linger(c);
  else if (!c->closing) {
    // A client that stopped reading was paused (on_read); the socket drained, so read again.
    if (c->pending_writes == 0 && !c->job) start_reading(c);
    update_wait(c, true);
  }
}

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(io->read_buffer, sizeof io->read_buffer); }

void on_linger_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  if (nread < 0) close_connection(reinterpret_cast<Connection*>(stream));
}

void on_shutdown(uv_shutdown_t* req, int) { delete req; }

void respond_timeout(Connection* c, std::string message) {
  http::ParseError error;
  error.status = 408;
  error.message = std::move(message);
  stop_reading(c);
  respond_transport_error(c, error);
}

// A client that reads none of its answer for the write timeout is closed: it would otherwise hold the
// answer's memory (and a stream's generator) for as long as it likes.
void log_not_reading(Connection* c) {
  Job* job = c->job ? c->job : c->writing_for;
  std::string what = job ? fmt::format(" (answering {} {})", job->request.method, job->request.target) : "";
  logline::write(
      logline::Stream::out, logline::Level::info, "azmlinfsrv",
      fmt::format("Closed the connection from {}{}: the client read none of the answer for {} ms, with {} bytes of it "
                  "still to send{}. A client must read an answer as it comes; for clients that pause longer, raise "
                  "--request_body_timeout_ms (REQUEST_BODY_TIMEOUT_MS).",
                  c->peer, what, io->wait_ns[kBody] / 1000000,
                  uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp)),
                  stream_open(c) ? "; the stream's generator is closed" : ""));
}

void expire(Connection* c) {
  Wait kind = static_cast<Wait>(c->wait);
  unlink_wait(c);
  if (kind == kBody && c->pending_writes > 0) {
    // The write timeout counts from the last progress, not from the start of the write: a large answer to
    // a client that reads slowly but steadily is never cut. Progress inside one write has no callback; it
    // shows here, as bytes that reached the client since the wait began: wait again (so a client that
    // stops is closed between one and two timeouts after its last read).
    if (bytes_delivered(c) != c->wait_delivered) {
      update_wait(c, true);
      return;
    }
    log_not_reading(c);
    close_connection(c);
    return;
  }
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

}  // namespace

void close_connection(Connection* c) {
  if (c->closing) return;
  unlink_wait(c);
  c->closing = true;
  if (c->job) {  // freed when its job comes back; a stream stops producing
    cancel_job(c->job);
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
}

void identify_peer(Connection* c) {
  struct sockaddr_storage addr;
  int addr_len = sizeof addr;
  char host[64] = "-";
  if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<struct sockaddr*>(&addr), &addr_len) == 0) {
    if (addr.ss_family == AF_INET) uv_ip4_name(reinterpret_cast<struct sockaddr_in*>(&addr), host, sizeof host);
    else if (addr.ss_family == AF_INET6) uv_ip6_name(reinterpret_cast<struct sockaddr_in6*>(&addr), host, sizeof host);
  }
  c->peer = host;
  addr_len = sizeof addr;
  if (uv_tcp_getsockname(&c->tcp, reinterpret_cast<struct sockaddr*>(&addr), &addr_len) == 0 &&
      addr.ss_family == AF_INET)
    c->local_port = ntohs(reinterpret_cast<struct sockaddr_in*>(&addr)->sin_port);
}

namespace {

// Queues what the socket did not take at once: c->out's rest (copied), then the body's rest (read from
// where it is: the job is kept until the write completes, a stream's part moved into the write).
bool queue_rest(Connection* c, OutBody& body, size_t sent) {
  auto* w = new WriteRequest;
  w->req.data = c;
  w->job = body.job;
  w->stream_bytes = body.stream_bytes;
  size_t out_size = c->out.size();
  if (sent < out_size) w->data.assign(c->out, sent, std::string::npos);
  uv_buf_t one = write_buf(w->data.data(), w->data.size());
  std::vector<uv_buf_t> many;
  bool single = body.bytes.empty() && body.trailer.empty() && w->data.size() <= kMaxWriteBuf;
  if (!single) {
    add_write_bufs(many, w->data);
    std::string_view bytes = body.bytes;
    if (body.part) {  // `bytes` is the whole part; a moved string may live elsewhere (a short one is copied)
      w->part = std::move(*body.part);
      bytes = w->part;
    }
    std::vector<uv_buf_t> rest;
    add_write_bufs(rest, bytes);
    add_write_bufs(rest, body.trailer);
    drop_sent(rest, sent > out_size ? sent - out_size : 0);
    many.insert(many.end(), rest.begin(), rest.end());
  }
  // A buffer count, not a length: one per kMaxWriteBuf of the body, plus two.
  auto nbufs = static_cast<unsigned>(single ? 1 : many.size());
  ++c->pending_writes;
  if (w->job) ++w->job->writes;
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), single ? &one : many.data(), nbufs, on_written) < 0) {
    --c->pending_writes;
    Job* job = w->job;
    delete w;
    if (job) job_written(job, body.stream_bytes);
    c->out.clear();
    close_connection(c);
    return false;
  }
  if (w->job) c->writing_for = w->job;
  return true;
}

}  // namespace

// Sends c->out, then `body`, as one write: straight to the socket when it takes them, the rest queued. A
// small answer (c->out alone) is one buffer and, when the socket takes it, no allocation.
void send(Connection* c, OutBody body) {
  if (c->closing) {
    c->out.clear();
    if (body.job) give_back_stream_bytes(body.job, body.stream_bytes);
    return;
  }
  size_t out_size = c->out.size();
  size_t total = out_size + body.bytes.size() + body.trailer.size();
  if (total == 0) return;
  c->bytes_out += total;  // to the socket now, or queued (a failed write closes the connection)
  size_t sent = 0;
  if (c->pending_writes == 0) {  // else the socket is full, and these bytes go after the queued ones
    auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
    int n = 0;
    if (body.bytes.empty() && body.trailer.empty() && out_size <= kMaxWriteBuf) {
      uv_buf_t buf = write_buf(c->out.data(), out_size);
      n = uv_try_write(stream, &buf, 1);
    } else {
      std::vector<uv_buf_t> bufs;
      add_write_bufs(bufs, c->out);
      add_write_bufs(bufs, body.bytes);
      add_write_bufs(bufs, body.trailer);
      n = uv_try_write(stream, bufs.data(), static_cast<unsigned>(bufs.size()));  // a count, as in queue_rest
    }
    if (n > 0) sent = static_cast<size_t>(n);  // a writev's result: at most 2 GiB - 4 KiB on Linux
    else if (n != UV_EAGAIN) {
      c->out.clear();
      if (body.job) give_back_stream_bytes(body.job, body.stream_bytes);
      close_connection(c);
      return;
    }
  }
  if (sent < total) {
    if (!queue_rest(c, body, sent)) return;
  } else if (body.job) {
    give_back_stream_bytes(body.job, body.stream_bytes);
  }
  c->out.clear();
  if (c->out.capacity() > kKeptOutCapacity) std::string().swap(c->out);
  if (c->close_after_write && c->pending_writes == 0 && !stream_open(c) && !c->awaiting_continued_body) linger(c);
}

void flush(Connection* c) {
  if (c->out.empty() && !c->out_body.job) return;
  send(c, std::exchange(c->out_body, OutBody{}));
}

void stop_reading(Connection* c) {
  if (!c->reading || c->lingering) return;  // a lingering connection reads only to discard
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->reading = false;
}

void start_reading(Connection* c) {
  if (c->reading || c->closing) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, io->read_cb) == 0) c->reading = true;
}

void read_now(Connection* c) {
  uv_os_fd_t fd = -1;
  if (!c->reading || c->closing || uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) != 0) return;
  ssize_t n;
  do n = ::read(fd, io->read_buffer, sizeof io->read_buffer);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  uv_buf_t buf = uv_buf_init(io->read_buffer, n > 0 ? static_cast<unsigned>(n) : 0);
  io->read_cb(reinterpret_cast<uv_stream_t*>(&c->tcp), n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno),
              &buf);
}

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

void append_server_error(std::string& out, int status, std::string_view message) {
  std::string body = http::json_message(message);
  http::begin_head(out, {.status = status,
                         .reason = http::reason_phrase(status),
                         .connection = http::Head::Connection::close,
                         .content_type = "application/json",
                         .content_length = body.size()});
  http::end_head(out);
  out.append(body);
}

// Counted, but not timed: a request that never arrived completely has no duration to speak of.
void respond_transport_error(Connection* c, const http::ParseError& error) {
  if (!c->metrics)
    count_answer(io->metrics, c->parser.head_done() ? metric_route(route_of(c->parser.request())) : MetricRoute::other,
                 error.status);
  c->close_after_write = true;
  append_server_error(c->out, error.status, error.message);
  flush(c);
}

void on_sweep(uv_timer_t*) {
  uint64_t now = base::monotonic_ns();
  for (int kind = kIdle; kind <= kLinger; ++kind) {
    while (io->wait_head[kind] && io->wait_head[kind]->deadline_ns <= now) expire(io->wait_head[kind]);
  }
}

}  // namespace worker
