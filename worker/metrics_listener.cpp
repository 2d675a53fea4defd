// The metrics port: GET /metrics (Prometheus) and GET /ready, answered without Python (docs/architecture.md
// "Metrics and readiness"). No request ids, CORS or access log (scrapes and probes every few seconds would
// drown the log), and not counted in the metrics they report.
#include "io_internal.h"

namespace worker {

namespace {

void respond_probe(Connection* c, const http::Request& r, int status, std::string_view content_type,
                   std::string_view body) {
  start_response(c, r, status, http::reason_phrase_upper(status), content_type, body.size());
  if (status == 405) http::add_header(c->out, "Allow", "GET, HEAD");
  end_response(c, r, body);
}

// Readiness, not liveness: a stopping worker is alive (it finishes its requests) but says here that new
// traffic should go elsewhere. Readiness is the pod's, not this worker's: a worker being replaced alone
// (reload, max_requests, a timeout) still says ready, since its replacements and siblings serve; only a
// stopping server says 503. A worker whose script failed to load (--reload) is not ready either: it
// answers /score with 503 until an edit loads.
void respond_ready(Connection* c, const http::Request& r) {
  if (!io->load_failure.empty())
    return respond_probe(c, r, 503, "application/json",
                         R"({"status": "script failed to load", "message": "The entry script failed to load; )"
                         R"(POST /score on the scoring port says why. Fix it and save: the server reloads it."})");
  if (!io->table->stopping.load(std::memory_order_relaxed))
    return respond_probe(c, r, 200, "application/json", R"({"status": "ready"})");
  c->close_after_write = true;  // also before this worker has seen its TERM: the server is going away
  respond_probe(c, r, 503, "application/json",
                R"({"status": "stopping", "message": "The server is stopping: it finishes the requests it has and )"
                R"(takes no new ones. Send new requests to another replica."})");
}

}  // namespace

void respond_metrics_listener(Connection* c, const http::Request& r) {
  std::string path = http::normalize_path(r.path());
  if (path != "/metrics" && path != "/ready")
    return respond_probe(c, r, 404, "application/json",
                         http::json_message("The metrics port serves only GET /metrics and GET /ready; scoring, "
                                            "swagger and liveness (GET /) are on the scoring port."));
  if (r.method != "GET" && r.method != "HEAD")
    return respond_probe(c, r, 405, "application/json",
                         http::json_message("The method is not allowed for the requested URL."));
  if (path == "/ready") return respond_ready(c, r);
  std::string body;
  render_metrics(body, *io->table, io->build, read_worker_memory(*io->table));
  respond_probe(c, r, 200, kMetricsContentType, body);
}

}  // namespace worker
