// Transport: reading, writing and closing a connection, the linger after a Connection: close answer,
// the server's own answers about the bytes it got (malformed, over a limit, too slow), and the sweep
// that ends expired waits. Nothing here knows routes or Python: bytes read go to io->read_cb.
#include <arpa/inet.h>

#include <fmt/format.h>

#include "io_internal.h"

namespace worker {

namespace {

struct WriteRequest {
  uv_write_t req;
  std::string data;
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
  delete w;
  --c->pending_writes;
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

}  // namespace

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
  if (c->close_after_write && c->pending_writes == 0 && !stream_open(c) && !c->awaiting_continued_body) linger(c);
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
