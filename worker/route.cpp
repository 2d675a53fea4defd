// The views the I/O thread answers itself (docs/behaviour.md 3.1): routing and method rules, the
// request-id checks, health, swagger, and the OPTIONS/HEAD answers of /score when run() does not take
// the raw request. What is left is a score request for the Python thread.
#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"

namespace worker {

namespace {

bool method_routed(Route route, std::string_view m) {
  if (m == "GET" || m == "HEAD" || m == "OPTIONS") return true;
  return route == Route::score && m == "POST";
}

// Request-id checks run before every view (docs/behaviour.md 3.3); false when they answered with 431.
bool check_request_ids(Connection* c, const http::Request& r, http::RequestIds& ids) {
  ids = http::resolve_request_ids(r);
  if (ids.outcome == http::RequestIds::Outcome::request_id_too_long) {
    respond_message(c, r, 431, "x-request-id must not exceed 100 characters", &ids);
    return false;
  }
  // The reference warns as soon as it sees x-ms-request-id, before it checks the ids' lengths.
  if (ids.deprecated_header_used)
    logline::write(logline::Stream::out, logline::Level::warning, "azmlinfsrv",
                   "x-ms-request-id header has been deprecated and will be removed from future versions of the "
                   "server. Please use x-ms-client-request-id.",
                   ids.request_id);
  if (ids.outcome == http::RequestIds::Outcome::client_ids_too_long) {
    respond_message(c, r, 431, "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters", &ids);
    return false;
  }
  return true;
}

// Flask's automatic OPTIONS answer. The health and swagger views get it as Flask gives it: an empty
// Response whose Content-Length Werkzeug adds last, after every after-request header. The score view's
// (run() not taking the raw request) is its AMLResponse("", 200): Content-Length in its place, its
// header, its log line.
void respond_options(Connection* c, const http::Request& r, const http::RequestIds& ids,
                     std::optional<uint64_t> score_received_ns = {}) {
  if (score_received_ns) {
    start_response(c, r, 200, "OK", "text/html; charset=utf-8", size_t{0});
    http::add_header(c->out, "x-ms-run-function-failed", "False");
    add_request_headers(c, r, ids);
  } else {
    start_response(c, r, 200, "OK", "text/html; charset=utf-8", std::nullopt);
    http::add_header(c->out, "Allow", "GET, HEAD, OPTIONS");
    add_request_headers(c, r, ids);
    http::add_header(c->out, "Content-Length", size_t{0});
  }
  end_response(c, r, "");
  if (score_received_ns) log_view_request(r, 200, ms_since(*score_received_ns), 0, ids.request_id);
  note_answer(c, r, 200, 0, ids.request_id);
}

void respond_health(Connection* c, const http::Request& r, const http::RequestIds& ids) {
  if (r.method == "OPTIONS") return respond_options(c, r, ids);
  constexpr std::string_view body = "Healthy";
  start_response(c, r, 200, "OK", "text/html; charset=utf-8", body.size());
  add_request_headers(c, r, ids);
  end_response(c, r, body);
  note_answer(c, r, 200, r.method == "HEAD" ? 0 : body.size(), ids.request_id);
}

// GET /swagger.json[?version=V] from the documents built at boot (docs/behaviour.md 5.1).
void respond_swagger(Connection* c, const http::Request& r, const http::RequestIds& ids, uint64_t received_ns) {
  if (r.method == "OPTIONS") return respond_options(c, r, ids);
  std::string asked = http::query_param(r.query(), "version").value_or("2");
  std::string version = asked == "2.0" ? "2" : asked == "3.0" ? "3" : asked;
  const auto& documents = bridge::swagger_documents();
  std::string available;
  const std::string* document = nullptr;
  for (const auto& [v, json] : documents) {
    available += (available.empty() ? "" : ", ") + v;
    if (v == version) document = &json;
  }
  int status = 200;
  std::string body;
  if (version != "2" && version != "3" && version != "3.1") {
    status = 404;
    body = http::json_message(fmt::format("Swagger version [{}] is not valid. Supported versions: [{}].", asked, available));
  } else if (!document) {
    status = 404;
    body = http::json_message(fmt::format(
        "Swagger version [{}] is not supported for the scoring script. Supported swagger versions: [{}].", asked,
        available));
  }
  const std::string& sent = document && status == 200 ? *document : body;
  // The reference answers both with AMLResponse(json_str=True): x-ms-run-function-failed False.
  start_response(c, r, status, http::reason_phrase_upper(status), "application/json", sent.size());
  http::add_header(c->out, "x-ms-run-function-failed", "False");
  add_request_headers(c, r, ids);
  end_response(c, r, sent);
  log_view_request(r, status, ms_since(received_ns), sent.size(), ids.request_id);
  note_answer(c, r, status, r.method == "HEAD" ? 0 : sent.size(), ids.request_id);
}

// /score and /swagger.json of a worker whose script failed to load (--reload): 503 with the error, the
// file and the line (bridge::load_failure()), until an edit reloads the workers. Nothing goes to Python.
void respond_load_failure(Connection* c, const http::Request& r, const http::RequestIds& ids, uint64_t received_ns) {
  const std::string& body = io->load_failure;
  start_response(c, r, 503, http::reason_phrase_upper(503), "application/json", body.size());
  http::add_header(c->out, "x-ms-run-function-failed", "False");
  add_request_headers(c, r, ids);
  end_response(c, r, body);
  log_view_request(r, 503, ms_since(received_ns), body.size(), ids.request_id);
  note_answer(c, r, 503, r.method == "HEAD" ? 0 : body.size(), ids.request_id);
}

// OPTIONS and HEAD on /score when run() does not take the raw request (docs/behaviour.md 3.5).
void respond_score_without_run(Connection* c, const http::Request& r, const http::RequestIds& ids,
                               uint64_t received_ns) {
  if (r.method == "OPTIONS") return respond_options(c, r, ids, received_ns);
  constexpr std::string_view kMessage = "Method not allowed";
  log_view_request(r, 405, ms_since(received_ns), http::json_message(kMessage).size(), ids.request_id);
  respond_message(c, r, 405, kMessage, &ids);
}

}  // namespace

bool goes_to_python(const http::Request& r) {
  if (!io->load_failure.empty()) return false;
  if (route_of(r) != Route::score || !method_routed(Route::score, r.method)) return false;
  return !((r.method == "OPTIONS" || r.method == "HEAD") && bridge::input_mode() != bridge::InputMode::raw);
}

bool answer_without_python(Connection* c, http::Request& r, uint64_t received_ns, http::RequestIds& ids) {
  Route route = route_of(r);
  c->route = metric_route(route);
  c->received_ns = received_ns;
  if (route == Route::not_found) {
    respond_message(c, r, 404,
                    "The requested URL was not found on the server. If you entered the URL manually please check your "
                    "spelling and try again.",
                    nullptr);
    return true;
  }
  if (!method_routed(route, r.method)) {
    respond_message(c, r, 405, "The method is not allowed for the requested URL.", nullptr);
    return true;
  }
  if (!check_request_ids(c, r, ids)) return true;
  if (route == Route::health) {
    respond_health(c, r, ids);
    return true;
  }
  if (!io->load_failure.empty() && route != Route::health) {
    respond_load_failure(c, r, ids, received_ns);
    return true;
  }
  if (route == Route::swagger) {
    respond_swagger(c, r, ids, received_ns);
    return true;
  }
  if ((r.method == "OPTIONS" || r.method == "HEAD") && bridge::input_mode() != bridge::InputMode::raw) {
    respond_score_without_run(c, r, ids, received_ns);
    return true;
  }
  return false;
}

}  // namespace worker
