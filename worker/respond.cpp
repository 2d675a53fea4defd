// Answers to requests: the head every answer starts with, the headers the reference adds after each
// view, the request and access log lines, the JSON message answers and the scored answer.
#include <fmt/compile.h>
#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"

namespace worker {

namespace {

bool header_is_safe(std::string_view s) {
  for (char ch : s)
    if (ch == '\r' || ch == '\n' || ch == '\0') return false;
  return true;
}

}  // namespace

// Status line and the headers every response starts with.
void start_response(Connection* c, const http::Request& r, int status, std::string_view reason,
                    std::string_view content_type, std::optional<size_t> content_length) {
  bool keep = r.keep_alive && !io->draining && !c->close_after_write;
  if (!keep) c->close_after_write = true;
  ++c->responses;
  using Persist = http::Head::Connection;
  Persist connection = !keep ? Persist::close
                       : (r.version_major == 1 && r.version_minor == 0) ? Persist::keep_alive_http10
                                                                        : Persist::keep_alive;
  http::begin_head(c->out, {.status = status,
                            .reason = reason,
                            .connection = connection,
                            .content_type = content_type,
                            .content_length = content_length});
}

// The after-request headers of "family A" responses (docs/behaviour.md 3.2), in the reference's order.
void add_request_headers(Connection* c, const http::Request& r, const http::RequestIds& ids, bool cors) {
  if (cors) io->cors.append_headers(r, c->out);
  if (!io->server_version.empty()) http::add_header(c->out, "x-ms-server-version", io->server_version);
  if (!ids.request_id.empty()) http::add_header(c->out, "x-request-id", ids.request_id);
  if (!ids.legacy_id.empty()) http::add_header(c->out, "x-ms-request-id", ids.legacy_id);
  if (!ids.client_id.empty()) http::add_header(c->out, "x-ms-client-request-id", ids.client_id);
  if (const std::string* trace = r.find_header("traceid")) http::add_header(c->out, "TraceId", *trace);
}

void end_response(Connection* c, const http::Request& r, std::string_view body) {
  http::end_head(c->out);
  if (r.method != "HEAD") c->out.append(body);
}

// Every answer to a request that was read completely ends here: its count and duration, then the
// access log line.
void note_answer(Connection* c, const http::Request& r, int status, size_t body_sent, std::string_view request_id) {
  count_answer(io->metrics, c->route, status);
  observe_request_duration(io->metrics, c->route, base::monotonic_ns() - c->received_ns);
  // The reference's access log drops exactly the records containing "GET / HTTP/1.1".
  if (r.method == "GET" && r.target == "/" && r.version_major == 1 && r.version_minor == 1) return;
  const std::string* agent = r.find_header("user-agent");
  const std::string* referer = r.find_header("referer");
  std::string& line = io->log_scratch;
  line.clear();
  fmt::format_to(std::back_inserter(line), FMT_COMPILE("{} - - [{}] \"{} {} HTTP/{}.{}\" {} "), c->peer,
                 io->access_log_time.now(), r.method, r.target, r.version_major, r.version_minor, status);
  if (body_sent) fmt::format_to(std::back_inserter(line), FMT_COMPILE("{}"), body_sent);
  else line += '-';
  fmt::format_to(std::back_inserter(line), FMT_COMPILE(" \"{}\" \"{}\""), referer ? *referer : "-",
                 agent ? *agent : "-");
  logline::write(logline::Stream::out, logline::Level::info, "gunicorn.access", line, request_id);
}

// The azmlinfsrv line for requests that reached the score or swagger view (docs/behaviour.md 6.3).
// A streamed body's length is unknown when the line is written: "N/A", as the reference logs it.
void log_view_request(const http::Request& r, int status, double ms, std::optional<size_t> length,
                      std::string_view request_id) {
  std::string& line = io->log_scratch;
  line.clear();
  fmt::format_to(std::back_inserter(line), FMT_COMPILE("{} {} {} {:.3f}ms "), r.method, r.target, status, ms);
  if (length) fmt::format_to(std::back_inserter(line), FMT_COMPILE("{}"), *length);
  else line += "N/A";
  logline::write(logline::Stream::out, logline::Level::info, "azmlinfsrv", line, request_id);
}

double ms_since(uint64_t start_ns) { return static_cast<double>(base::monotonic_ns() - start_ns) / 1e6; }

void respond_message(Connection* c, const http::Request& r, int status, std::string_view message,
                     const http::RequestIds* ids, bool run_failed) {
  std::string body = http::json_message(message);
  start_response(c, r, status, http::reason_phrase_upper(status), "application/json", body.size());
  http::add_header(c->out, "x-ms-run-function-failed", run_failed ? "True" : "False");
  if (ids) add_request_headers(c, r, *ids);
  end_response(c, r, body);
  note_answer(c, r, status, r.method == "HEAD" ? 0 : body.size(), ids ? std::string_view(ids->request_id) : "");
}

void respond_scored(Connection* c, Job* job, const http::RequestIds& ids) {
  const http::Request& r = job->request;
  bridge::ScoreResponse& resp = job->response;
  for (const auto& [name, value] : resp.headers) {
    if (!header_is_safe(name) || !header_is_safe(value)) {
      resp.status = 500;
      std::string shown;
      base::append_json_string(shown, name, base::JsonText::ensure_ascii);
      logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv",
                     fmt::format("run() returned a response header with CR, LF or NUL in it (\"{}\"); it was not "
                                 "sent. Remove line breaks from header names and values.",
                                 shown));
      resp.error_message = "An unexpected internal error occurred. Check the logs for more info.";
      resp.run_function_failed = false;
      resp.has_exec_ms = false;
      break;
    }
  }
  // flask-cors leaves an answer alone whose first Access-Control-Allow-Origin is not empty.
  bool own_cors = false;
  std::string error_body;
  if (!resp.error_message.empty()) {
    error_body = http::json_message(resp.error_message);
  } else {
    for (const auto& [name, value] : resp.headers) {
      if (!http::iequals(name, "access-control-allow-origin")) continue;
      own_cors = !value.empty();
      break;
    }
  }
  const std::string& body = resp.error_message.empty() ? resp.body : error_body;
  std::string_view reason = resp.reason.empty() || !resp.error_message.empty()
                                ? http::reason_phrase_upper(resp.status)
                                : std::string_view(resp.reason);
  if (!resp.error_message.empty()) {
    start_response(c, r, resp.status, reason, "application/json", body.size());
    http::add_header(c->out, "x-ms-run-function-failed", resp.run_function_failed ? "True" : "False");
  } else {
    start_response(c, r, resp.status, reason);
    size_t i = 0;
    // The script's own Content-Type goes first, spelled as the script spelled it.
    if (!resp.headers.empty() && http::iequals(resp.headers[0].first, "content-type")) {
      http::add_header(c->out, resp.headers[0].first, resp.headers[0].second);
      i = 1;
    }
    if (!resp.stream) http::add_header(c->out, "Content-Length", body.size());
    else if (chunked(r)) http::add_header(c->out, "Transfer-Encoding", "chunked");
    else c->close_after_write = true;  // HTTP/1.0: the end of the body is the end of the connection
    for (; i < resp.headers.size(); ++i) {
      // Ours replace the script's: x-request-id is set, not added, and x-ms-server-version appears once.
      if (http::iequals(resp.headers[i].first, "x-request-id") && !ids.request_id.empty()) continue;
      if (http::iequals(resp.headers[i].first, "x-ms-server-version") && !io->server_version.empty()) continue;
      http::add_header(c->out, resp.headers[i].first, resp.headers[i].second);
    }
  }
  if (resp.has_exec_ms) {
    char ms[32];
    auto end = fmt::format_to_n(ms, sizeof ms, FMT_COMPILE("{:.3f}"), resp.exec_ms).out;
    http::add_header(c->out, "x-ms-run-fn-exec-ms", std::string_view(ms, static_cast<size_t>(end - ms)));
  }
  add_request_headers(c, r, ids, !own_cors);
  end_response(c, r, resp.stream ? std::string_view{} : std::string_view(body));  // chunks follow
  // The reference logs the view's line before the response goes out, the access line after.
  log_view_request(r, resp.status, job->handled_ms, resp.stream ? std::optional<size_t>() : body.size(),
                   ids.request_id);
  note_answer(c, r, resp.status, r.method == "HEAD" || resp.stream ? 0 : body.size(), ids.request_id);
}

}  // namespace worker
