// Answers to requests: the head every answer starts with, the headers the reference adds after each
// view, the request and access log lines, the JSON message answers and the scored answer.
#include <charconv>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"

namespace worker {

namespace {

constexpr std::string_view kInternalError = "An unexpected internal error occurred. Check the logs for more info.";

// A script's text in a log line: JSON-escaped (a control character shows as \r, \u0000) and cut short.
std::string shown(std::string_view s) {
  std::string out;
  base::append_json_string(out, s.substr(0, 200), base::JsonText::ensure_ascii);
  if (s.size() > 200) out += "...";
  return out;
}

// The head of run()'s response cannot be sent as it is: the problem is logged, and the client gets the
// JSON 500 of an internal error instead. False, for the caller to return.
bool refuse_script_head(bridge::ScoreResponse& resp, const std::string& problem) {
  logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv", problem);
  resp.status = 500;
  resp.error_message = kInternalError;
  resp.run_function_failed = false;
  resp.has_exec_ms = false;
  return false;
}

// run()'s status, status text and header fields go into the head as they are, so each must be what an
// HTTP head can carry: otherwise a value could end the head early or add a header of its own (response
// splitting), or a status line no client reads would go out. False after refusing the head.
bool check_script_head(bridge::ScoreResponse& resp) {
  if (resp.status < 100 || resp.status > 599)
    return refuse_script_head(
        resp, fmt::format("run() returned a response with the status {}, which is not an HTTP status code (100-599); "
                          "the client got a 500 instead. Return a status code from 100 to 599 "
                          "(AMLResponse(message, status_code), flask.Response(status=...)).",
                          resp.status));
  if (!http::is_field_text(resp.reason))
    return refuse_script_head(
        resp, fmt::format("run() returned a response with the status text \"{}\", which has a line break or another "
                          "control character; the client got a 500 instead. Give the status code alone (200), or "
                          "a status text of printable characters (\"299 CUSTOM\").",
                          shown(resp.reason)));
  for (const auto& [name, value] : resp.headers) {
    if (!http::is_token(name))
      return refuse_script_head(
          resp, fmt::format("run() returned a response header named \"{}\", which is not an HTTP header name "
                            "(letters, digits and !#$%&'*+-.^_`|~ only: no spaces, colons, line breaks or other "
                            "control characters); the client got a 500 instead. Rename the header.",
                            shown(name)));
    if (!http::is_field_text(value))
      return refuse_script_head(
          resp, fmt::format("run() returned the response header '{}' with a line break or another control character "
                            "(CR, LF, NUL, ...) in its value \"{}\"; the client got a 500 instead. Remove control "
                            "characters from header values.",
                            name, shown(value)));
  }
  return true;
}

// A header of run()'s response the server owns (http::is_server_owned_header) or a Content-Length that
// disagrees with the body: not sent, and said once per worker for each name, since a script sets the same
// headers on every answer.
void warn_dropped_header(std::string_view name, std::string_view value, std::string_view why) {
  for (const std::string& warned : io->warned_headers)
    if (http::iequals(warned, name)) return;
  io->warned_headers.emplace_back(name);
  logline::write(logline::Stream::out, logline::Level::warning, "azmlinfsrv",
                 fmt::format("run() returned a response with the header '{}: {}', which was not sent: {} Remove it "
                             "from the response's headers. (Said once per worker for each header name.)",
                             name, shown(value), why));
}

constexpr std::string_view kOwnedHeaderWhy =
    "the server writes the headers that frame the answer and manage the connection (Content-Length, "
    "Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-*), and Server and Date, itself.";

// The script's Content-Length against the body's length: equal, it is the one the server writes anyway.
bool states_length(std::string_view declared, uint64_t length) {
  declared = http::trim_ows(declared);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(declared.data(), declared.data() + declared.size(), value);
  return ec == std::errc() && end == declared.data() + declared.size() && !declared.empty() && value == length;
}

void warn_content_length(std::string_view declared, uint64_t length) {
  warn_dropped_header("Content-Length", declared,
                      fmt::format("the body has {} bytes; the server writes the Content-Length (or sends a streamed "
                                  "body chunked) itself, so the client reads the whole body.",
                                  length));
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
                            .content_length = content_length,
                            .http10 = r.version_major == 1 && r.version_minor == 0});
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

void count_answer_of(Connection* c, int status) {
  count_answer(io->metrics, c->route, status);
  observe_request_duration(io->metrics, c->route, base::monotonic_ns() - c->received_ns);
}

// gunicorn's access line; the byte count is the body bytes sent (0 for HEAD and empty bodies, a streamed
// body's sum), as gunicorn's resp.sent.
void log_access(Connection* c, const http::Request& r, int status, uint64_t body_sent, std::string_view request_id) {
  // The reference's access log drops exactly the records containing "GET / HTTP/1.1".
  if (r.method == "GET" && r.target == "/" && r.version_major == 1 && r.version_minor == 1) return;
  const std::string* agent = r.find_header("user-agent");
  const std::string* referer = r.find_header("referer");
  std::string& line = io->log_scratch;
  line.clear();
  fmt::format_to(std::back_inserter(line), FMT_COMPILE("{} - - [{}] \"{} {} HTTP/{}.{}\" {} {} \"{}\" \"{}\""),
                 c->peer, io->access_log_time.now(), r.method, r.target, r.version_major, r.version_minor, status,
                 body_sent, referer ? *referer : "-", agent ? *agent : "-");
  logline::write(logline::Stream::out, logline::Level::info, "gunicorn.access", line, request_id);
}

void note_answer(Connection* c, const http::Request& r, int status, size_t body_sent, std::string_view request_id) {
  count_answer_of(c, status);
  log_access(c, r, status, body_sent, request_id);
}

void end_streamed_answer(Connection* c, Job* job) {
  if (!job->script_content_length.empty() && !states_length(job->script_content_length, job->body_sent))
    warn_content_length(job->script_content_length, job->body_sent);
  log_access(c, job->request, job->response.status, job->body_sent, job->ids.request_id);
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

namespace {

// --dev: the failure's detail beside the reference's message, which stays first.
void add_error_detail(std::string& json_message_body, std::string_view error) {
  if (error.empty()) return;
  json_message_body.pop_back();
  json_message_body.append(", \"error\": ").append(error).push_back('}');
}

}  // namespace

void respond_message(Connection* c, const http::Request& r, int status, std::string_view message,
                     const http::RequestIds* ids, bool run_failed, std::string_view error) {
  std::string body = http::json_message(message);
  add_error_detail(body, error);
  start_response(c, r, status, http::reason_phrase_upper(status), "application/json", body.size());
  http::add_header(c->out, "x-ms-run-function-failed", run_failed ? "True" : "False");
  if (ids) add_request_headers(c, r, *ids);
  end_response(c, r, body);
  note_answer(c, r, status, r.method == "HEAD" ? 0 : body.size(), ids ? std::string_view(ids->request_id) : "");
}

void respond_scored(Connection* c, Job* job, const http::RequestIds& ids) {
  const http::Request& r = job->request;
  bridge::ScoreResponse& resp = job->response;
  if (resp.error_message.empty()) check_script_head(resp);
  bool failed = !resp.error_message.empty();  // a JSON error: run() failed, or its head was refused
  // A streamed body goes out chunked (HTTP/1.0: delimited by the close); a 1xx, 204 or 304 has none.
  bool bodyless = !failed && http::status_has_no_body(resp.status);
  bool streamed = !failed && !bodyless && resp.streamed;
  // The generator of a stream whose body is not sent need not run (a refused head, a HEAD request).
  if (resp.streamed && (!streamed || r.method == "HEAD")) cancel_job(job);
  job->stream_open = streamed && r.method != "HEAD";
  if (streamed && !chunked(r)) c->close_after_write = true;
  if (bodyless && resp.status < 200) {
    // An interim status is not an answer: the client would wait on for the final one. No body, and the
    // connection ends after the head.
    c->close_after_write = true;
    if (!io->warned_interim_status) {
      io->warned_interim_status = true;
      logline::write(logline::Stream::out, logline::Level::warning, "azmlinfsrv",
                     fmt::format("run() returned a response with the interim status {} (1xx): it has no body and "
                                 "no final answer follows it, so the connection was closed after its head. Return a "
                                 "final status (200-599). (Said once per worker.)",
                                 resp.status));
    }
  }
  // flask-cors leaves an answer alone whose first Access-Control-Allow-Origin is not empty.
  bool own_cors = false;
  std::string error_body;
  if (failed) {
    error_body = http::json_message(resp.error_message);
    if (io->dev) add_error_detail(error_body, resp.failure_detail);
  } else {
    for (const auto& [name, value] : resp.headers) {
      if (!http::iequals(name, "access-control-allow-origin")) continue;
      own_cors = !value.empty();
      break;
    }
  }
  std::string_view body = failed ? std::string_view(error_body) : resp.body_view();
  std::string_view reason =
      resp.reason.empty() || failed ? http::reason_phrase_upper(resp.status) : std::string_view(resp.reason);
  if (failed) {
    start_response(c, r, resp.status, reason, "application/json", body.size());
    http::add_header(c->out, "x-ms-run-function-failed", resp.run_function_failed ? "True" : "False");
  } else {
    start_response(c, r, resp.status, reason);
    // gunicorn writes Transfer-Encoding with its own headers, before the application's.
    if (streamed && chunked(r)) http::add_header(c->out, "Transfer-Encoding", "chunked");
    size_t i = 0;
    // The script's own Content-Type goes first, spelled as the script spelled it.
    if (!resp.headers.empty() && http::iequals(resp.headers[0].first, "content-type")) {
      http::add_header(c->out, resp.headers[0].first, http::trim_ows(resp.headers[0].second));
      i = 1;
    }
    // Ours takes the place of the script's (a Response of bytes has one, where Werkzeug put it); a JSON
    // result has none: then it follows Content-Type.
    bool length_written = streamed || bodyless;
    if (!length_written) {
      bool script_has_length = false;
      for (size_t k = i; k < resp.headers.size() && !script_has_length; ++k)
        script_has_length = http::iequals(resp.headers[k].first, "content-length");
      if (!script_has_length) {
        http::add_header(c->out, "Content-Length", body.size());
        length_written = true;
      }
    }
    for (; i < resp.headers.size(); ++i) {
      const auto& [name, value] = resp.headers[i];
      // Ours replace the script's: x-request-id is set, not added, and x-ms-server-version appears once.
      if (http::iequals(name, "x-request-id") && !ids.request_id.empty()) continue;
      if (http::iequals(name, "x-ms-server-version") && !io->server_version.empty()) continue;
      if (http::iequals(name, "content-length")) {
        if (streamed) job->script_content_length = value;  // checked against the bytes sent, at the end
        if (streamed || bodyless || length_written) continue;
        if (!states_length(value, body.size())) warn_content_length(value, body.size());
        http::add_header(c->out, "Content-Length", body.size());
        length_written = true;
        continue;
      }
      if (http::is_server_owned_header(name)) {
        warn_dropped_header(name, value, kOwnedHeaderWhy);
        continue;
      }
      // gunicorn strips a value's surrounding blanks (RFC 9110 5.5).
      http::add_header(c->out, name, http::trim_ows(value));
    }
  }
  if (resp.has_exec_ms) {
    char ms[32];
    auto end = fmt::format_to_n(ms, sizeof ms, FMT_COMPILE("{:.3f}"), resp.exec_ms).out;
    http::add_header(c->out, "x-ms-run-fn-exec-ms", std::string_view(ms, static_cast<size_t>(end - ms)));
  }
  add_request_headers(c, r, ids, !own_cors);
  if (streamed || bodyless || failed || body.size() <= kInlineBodyMax || r.method == "HEAD") {
    end_response(c, r, streamed || bodyless ? std::string_view{} : body);  // a stream's parts follow
  } else {
    // A large body goes out from the job's response, after the head: flush keeps the job until written.
    http::end_head(c->out);
    c->out_body = OutBody{};
    c->out_body.bytes = body;
    c->out_body.job = job;
  }
  // The reference logs the view's line before the response goes out, the access line after.
  log_view_request(r, resp.status, job->handled_ms,
                   resp.streamed && !failed ? std::optional<size_t>() : body.size(), ids.request_id);
  if (job->stream_open) count_answer_of(c, resp.status);  // the access line comes with the stream's end
  else note_answer(c, r, resp.status, r.method == "HEAD" || streamed || bodyless ? 0 : body.size(), ids.request_id);
}

}  // namespace worker
