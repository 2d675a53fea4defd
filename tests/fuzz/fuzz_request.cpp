// libFuzzer target: request parsing and the routing inputs derived from it. The bytes are one
// connection's input, fed in pieces whose sizes the input chooses (reads split anywhere), parsed as
// pipelined requests; each request goes through what the I/O thread does before routing: path
// normalisation, the swagger version parameter, the request-id rules, the JSON error body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../../http/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // First byte: the read size pattern; second: small limits or the defaults.
  size_t chunk = 1 + data[0] % 64;
  http::Limits limits;
  if (data[1] & 1) {
    limits.max_request_line = 64;
    limits.max_header_field = 64;
    limits.max_header_count = 4;
    limits.max_body = 32;
  }
  data += 2;
  size -= 2;
  http::Parser parser{limits};
  const char* p = reinterpret_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    size_t piece = chunk < left ? chunk : left;
    size_t consumed = 0;
    http::ParseStatus status = parser.feed(p, piece, &consumed);
    if (consumed > piece) __builtin_trap();
    p += consumed;
    left -= consumed;
    if (status == http::ParseStatus::error) {
      const http::ParseError& e = parser.error();
      if (e.status < 400 || e.status > 599 || e.message.empty()) __builtin_trap();
      std::string body = http::json_message(e.message);
      (void)body;
      return 0;
    }
    if (status == http::ParseStatus::request_ready) {
      http::Request& r = parser.request();
      std::string path = http::normalize_path(r.path());
      auto version = http::query_param(r.query(), "version");
      http::RequestIds ids = http::resolve_request_ids(r);
      std::string message = http::json_message(r.target);
      (void)path;
      (void)version;
      (void)ids;
      (void)message;
      if (r.body.size() > limits.max_body) __builtin_trap();
      if (r.headers.size() > limits.max_header_count) __builtin_trap();
      if (!r.keep_alive) return 0;  // the I/O thread stops reading such a connection
      parser.next();
    }
  }
  return 0;
}
