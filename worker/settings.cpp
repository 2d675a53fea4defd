// The table of transport settings and how the worker reads them (see settings.h).
#include "settings.h"

#include <cstdlib>

namespace worker {

namespace {

// Sizes are gunicorn's defaults (CONTRACT.md 2.1) plus the body limit of DIFFERENCES.md. The head
// timeout bounds slowloris; the body timeout is a pause between reads, so a large upload on a slow
// link still succeeds; the keep-alive timeout outlasts common load-balancer idle timeouts' retries.
constexpr Tunable kTunables[] = {
    {"--limit_request_line", "LIMIT_REQUEST_LINE", 4094,
     "Longest request line in bytes (method, target, version); longer is a 400."},
    {"--limit_request_field_size", "LIMIT_REQUEST_FIELD_SIZE", 8190,
     "Longest header field in bytes (name and value); longer is a 431."},
    {"--limit_request_fields", "LIMIT_REQUEST_FIELDS", 100, "Most header fields in one request; more is a 431."},
    {"--limit_request_body", "LIMIT_REQUEST_BODY", uint64_t{100} << 20,
     "Largest request body in bytes; larger is a 413, decided before the body is read."},
    {"--request_head_timeout_ms", "REQUEST_HEAD_TIMEOUT_MS", 30000,
     "Time allowed for a request's head (line and headers) from its first byte; then a 408."},
    {"--request_body_timeout_ms", "REQUEST_BODY_TIMEOUT_MS", 30000,
     "Longest pause while reading a body or writing a response; then a 408 or a close."},
    {"--keep_alive_timeout_ms", "KEEP_ALIVE_TIMEOUT_MS", 60000,
     "How long an idle keep-alive connection stays open between requests."},
};

}  // namespace

std::span<const Tunable> tunables() { return kTunables; }

std::optional<uint64_t> parse_tunable(const std::string& text) {
  if (text.empty() || text.size() > 15) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value < 1 || value > kTunableMax) return std::nullopt;
  return value;
}

uint64_t tunable_value(const char* env) {
  for (const Tunable& t : kTunables) {
    if (std::string_view(t.env) != env) continue;
    const char* text = getenv(env);
    if (!text) return t.default_value;
    // The arbiter refused bad values at start-up; a worker started some other way keeps the default.
    return parse_tunable(text).value_or(t.default_value);
  }
  return 0;
}

}  // namespace worker
