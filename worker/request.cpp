// From bytes to requests and back: parsing a connection's input in order, answering what needs no
// Python, handing score requests to the Python thread as jobs (a loop pass's worth at a time), and
// writing their results, streamed or whole, when they come back.
#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"

namespace worker {

// The Response objects of answered jobs go to the Python thread, after the log lines of their answers
// (so a close() callback logs after the access line), and before any later request's job.
void hand_over_closers() {
  if (io->closers.empty()) return;
  logline::flush();
  io->queue->hand_closers(io->closers);
}

namespace {

void queue_for_python(Connection* c, http::Request& r, uint64_t received_ns, http::RequestIds&& ids) {
  Job* job = acquire_job();
  job->connection = c;
  std::swap(job->request, r);  // the parser goes on with the spare job's emptied buffers
  job->received_ns = received_ns;
  job->header_views.reserve(job->request.headers.size());
  for (const http::Header& h : job->request.headers) job->header_views.emplace_back(h.name, h.value);
  job->ids = std::move(ids);
  job->remote_addr = c->peer;
  job->server_port = c->local_port;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0) job->fd = fd;
  c->job = job;
  watch_deadlines();
  io->for_python.push_back(job);
}

// The parser dropped header fields whose names contain an underscore (http/parser.cpp says why); a
// client that meant them should learn where they went. Rare: only then is anything formatted.
void log_dropped_headers(const Connection* c, const http::Request& r) {
  logline::write(logline::Stream::out, logline::Level::info, "azmlinfsrv",
                 fmt::format("Dropped the request header(s) {} of {} {} from {}: a name with an underscore reads "
                             "the same as its dashed form to WSGI (X_Forwarded_For and X-Forwarded-For are both "
                             "HTTP_X_FORWARDED_FOR), so it could pass for a header a proxy checked. Spell header "
                             "names with dashes.",
                             r.dropped_headers, r.method, r.path(), c->peer));
}

// Answers a parsed request or hands it to Python; true when the answer is already in c->out.
bool handle_request(Connection* c) {
  http::Request& r = c->parser.request();
  uint64_t received_ns = base::monotonic_ns();
  c->had_request = true;
  if (!r.dropped_headers.empty()) [[unlikely]] log_dropped_headers(c, r);
  if (c->metrics) {
    respond_metrics_listener(c, r);
    return true;
  }
  http::RequestIds ids;
  if (answer_without_python(c, r, received_ns, ids)) return true;
  queue_for_python(c, r, received_ns, std::move(ids));
  return false;
}

// Parses and answers requests in order until the bytes run out or one waits for Python.
void process_input(Connection* c, const char* data, size_t len) {
  while (!c->closing) {
    if (c->job) {  // an answer is pending: keep the rest for later, in order
      c->leftover.append(data, len);
      // Reading on costs nothing per request (no epoll change); only a client that pipelines a lot
      // while run() works is paused, so what it sent ahead stays bounded.
      if (c->leftover.size() > kMaxPipelinedAhead) stop_reading(c);
      return;
    }
    size_t consumed = 0;
    http::ParseStatus status = c->parser.feed(data, len, &consumed);
    keep_request_bytes(c, data, consumed);
    data += consumed;
    len -= consumed;
    switch (status) {
      case http::ParseStatus::need_more:
        flush(c);
        return;
      case http::ParseStatus::head_complete:
        c->awaiting_continued_body = true;
        c->request_bytes_whole = false;  // moved, the request would be told "100 Continue" twice
        c->out.append("HTTP/1.1 100 Continue\r\n\r\n");
        flush(c);
        continue;
      case http::ParseStatus::error:
        c->awaiting_continued_body = false;
        respond_transport_error(c, c->parser.error());
        return;
      case http::ParseStatus::request_ready:
        c->awaiting_continued_body = false;
        // Busy here: the first worker that is free runs it (handoff.cpp); the connection is gone from here.
        if (!c->metrics && goes_to_python(c->parser.request()) && hand_off(c, data, len)) return;
        if (handle_request(c)) {
          c->parser.next();
          forget_request_bytes(c);
          if (c->close_after_write) {
            flush(c);
            stop_reading(c);
            return;
          }
        }
        continue;
    }
  }
}

// A request's answer is complete: the connection goes on with pipelined bytes or reads again.
void finish_job(Connection* c, Job* job) {
  c->job = nullptr;
  if (c->closing) {  // the client went away while the answer was being made
    c->out_body = OutBody{};
    release_job(job);
    c->closing = false;
    close_connection(c);
    return;
  }
  c->parser.next();
  forget_request_bytes(c);
  flush(c);  // before the job goes back: a large body is written from it, which keeps it until written
  release_job(job);
  if (c->close_after_write) {
    // A stream's end may leave nothing to flush (HTTP/1.0: no last chunk) while its close waited for it.
    if (c->pending_writes == 0) linger(c);
    else update_wait(c, false);  // the write timeout: a client that reads none of the answer is closed
    return;
  }
  std::string rest;
  rest.swap(c->leftover);
  process_input(c, rest.data(), rest.size());
  if (!c->job && !c->closing) start_reading(c);
  if (!c->closing) update_wait(c, false);
}

// A stream's part: a small one copied behind its framing, a large one sent from where it is (`part`, the
// string it is in, moved into the write if the socket does not take it at once; null: the job's own
// first part, kept with the job). Its bytes go back to the stream's window once the socket took them.
void write_chunk(Connection* c, Job* job, std::string_view data, std::string* part) {
  // Not after a head that sent no stream (a refused one, a HEAD answer); and never an empty chunk,
  // which would end the body.
  if (c->closing || !job->stream_open || data.empty()) {
    give_back_stream_bytes(job, data.size());
    return;
  }
  bool framed = chunked(job->request);
  if (framed) fmt::format_to(std::back_inserter(c->out), "{:x}\r\n", data.size());
  job->body_sent += data.size();
  OutBody body;
  body.job = job;
  body.stream_bytes = data.size();
  if (data.size() <= kInlineBodyMax) {
    c->out.append(data);
    if (framed) c->out.append("\r\n");
  } else {
    body.bytes = data;
    body.part = part;
    if (framed) body.trailer = "\r\n";
  }
  send(c, body);
  if (!c->closing) update_wait(c, false);  // a part the socket did not take starts the write timeout
}

}  // namespace

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = reinterpret_cast<Connection*>(stream);
  if (nread < 0) {
    // A half-close after a request (shutdown(SHUT_WR), as some clients do) still deserves the answer.
    if (nread == UV_EOF && (c->job || c->pending_writes > 0)) {
      c->peer_eof = true;
      c->close_after_write = true;
      stop_reading(c);
      return;
    }
    close_connection(c);
    return;
  }
  process_input(c, buf->base, static_cast<size_t>(nread));
  if (c->closing) return;
  // A client that sends but does not read would make us queue answers without bound: stop reading
  // until the socket takes what we wrote (connection.cpp resumes).
  if (c->pending_writes > 0) stop_reading(c);
  update_wait(c, true);
}

void on_jobs_done(uv_async_t*) {
  std::vector<Completion>& done = io->done;
  {
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    done.swap(io->queue->done);
  }
  for (Completion& event : done) {
    Job* job = event.job;
    bool streamed = job->response.streamed;
    bool last_event = event.kind == Completion::Kind::end || event.kind == Completion::Kind::abort ||
                      (event.kind == Completion::Kind::response && !streamed);
    if (last_event) {
      --io->jobs_outstanding;
      set_in_flight(io->metrics, static_cast<uint32_t>(io->jobs_outstanding));
    }
    if (event.kind == Completion::Kind::response) {  // even when its client was answered already: run() took this long
      observe_run_duration(io->metrics, static_cast<uint64_t>(job->handled_ms * 1e6));
      answer_if_timed_out(job);  // then job->connection is null: run()'s result is dropped below
    }
    if (!job->connection) {  // answered already (stuck past a deadline); run()'s result comes too late
      if (last_event) release_job(job);
      continue;
    }
    Connection* c = job->connection;
    switch (event.kind) {
      case Completion::Kind::response:
        if (!c->closing) respond_scored(c, job, job->ids);
        if (!streamed) finish_job(c, job);
        else write_chunk(c, job, job->response.body, nullptr);  // the first part came with the head
        break;
      case Completion::Kind::chunk:
        write_chunk(c, job, event.data, &event.data);
        break;
      case Completion::Kind::end:
        if (!c->closing && job->stream_open) {
          if (chunked(job->request)) c->out.append("0\r\n\r\n");
          end_streamed_answer(c, job);
        }
        finish_job(c, job);
        break;
      // The body broke after the head went out: only cutting tells the client. No access line, as gunicorn
      // writes none for a body that failed (nor for a client that left).
      case Completion::Kind::abort:
        c->out.clear();
        c->close_after_write = true;
        c->closing = true;
        finish_job(c, job);
        break;
    }
  }
  done.clear();
}

// Right after the loop has handled what the poll returned: all of it goes to Python in one hand-off,
// so a burst of requests costs the Python thread one wake-up, not one each.
void on_poll_handled(uv_check_t*) {
  if (io->for_python.empty()) return;
  hand_over_closers();  // the answers before these requests are closed before their run()
  if (!io->python_unavailable.empty()) return refuse_waiting_jobs(io->python_unavailable);
  io->queue->push(io->for_python);
  io->for_python.clear();
}

}  // namespace worker
