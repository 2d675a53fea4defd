// http/: strict parsing. Every input a proxy in front of us could read differently is refused with
// 400 (or 501/505), never turned into a request.
#include <catch2/catch.hpp>

#include "../../http/http.h"

namespace {

struct Outcome {
  http::ParseStatus status;
  int error_status;
  std::string message;
};

Outcome parse(std::string_view bytes, http::Limits limits = {}) {
  http::Parser p{limits};
  size_t used = 0;
  http::ParseStatus s = p.feed(bytes.data(), bytes.size(), &used);
  return {s, p.error().status, p.error().message};
}

// The same bytes fed one at a time: limits and checks must not depend on how reads split the input.
Outcome parse_bytewise(std::string_view bytes) {
  http::Parser p{http::Limits{}};
  http::ParseStatus s = http::ParseStatus::need_more;
  for (size_t i = 0; i < bytes.size(); ++i) {
    size_t used = 0;
    s = p.feed(bytes.data() + i, 1, &used);
    if (s == http::ParseStatus::error || s == http::ParseStatus::request_ready) break;
  }
  return {s, p.error().status, p.error().message};
}

void require_refused(std::string_view bytes, int status) {
  INFO(std::string(bytes));
  for (const Outcome& o : {parse(bytes), parse_bytewise(bytes)}) {
    CHECK(o.status == http::ParseStatus::error);
    CHECK(o.error_status == status);
    CHECK_FALSE(o.message.empty());
  }
}

}  // namespace

TEST_CASE("strict: Content-Length with Transfer-Encoding, either order, is a 400") {
  require_refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
  require_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400);
}

TEST_CASE("strict: duplicate or malformed Content-Length is a 400") {
  require_refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400);
  require_refused("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", 400);
  require_refused("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
  require_refused("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", 400);
  require_refused("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
}

TEST_CASE("strict: bad chunk sizes are a 400") {
  for (std::string size : {"zz", "-1", "3 ", "fffffffffffffffffff", ""}) {
    require_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\nabc\r\n0\r\n\r\n", 400);
  }
  // chunk data longer than its size
  require_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400);
}

TEST_CASE("strict: transfer codings other than chunked are a 501, malformed ones a 400") {
  require_refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
  require_refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc", 501);
  require_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400);
  require_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
  CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n").status ==
        http::ParseStatus::request_ready);
}

TEST_CASE("strict: obsolete line folding is a 400, however the bytes arrive") {
  require_refused("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\r\nX-A:\r\n b\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\r\n b\r\nX-A: a\r\n\r\n", 400);
  CHECK_THAT(parse("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n").message, Catch::Contains("folding"));
}

TEST_CASE("strict: folding checks stop at the end of the head: a body may hold CRLF SP") {
  std::string body = "a\r\n b\r\n\tc";
  auto o = parse("POST / HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(o.status == http::ParseStatus::request_ready);
  auto b = parse_bytewise("POST / HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(b.status == http::ParseStatus::request_ready);
}

TEST_CASE("strict: NUL, bare CR, bare LF and control characters in the head are a 400") {
  require_refused(std::string("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 27), 400);
  require_refused(std::string("GET / HTTP/1.1\r\nX\0A: ab\r\n\r\n", 27), 400);
  require_refused("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\r\nX-A: ab\r\rX-B: c\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\nX-A: ab\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\r\nX-A: ab\nX-B: c\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\rX-A: ab\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n", 400);
  require_refused("GET /a\tb HTTP/1.1\r\n\r\n", 400);
  require_refused(std::string("GET /a\0b HTTP/1.1\r\n\r\n", 20), 400);
}

TEST_CASE("strict: whitespace before a header's colon, or no name at all, is a 400") {
  require_refused("GET / HTTP/1.1\r\nX-A : ab\r\n\r\n", 400);
  require_refused("GET / HTTP/1.1\r\n: ab\r\n\r\n", 400);
}

TEST_CASE("strict: HTTP versions other than 1.0 and 1.1 are a 505; a missing or garbled version a 400") {
  for (std::string v : {"HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0"}) require_refused("GET / " + v + "\r\n\r\n", 505);
  require_refused("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
  require_refused("GET /\r\n\r\n", 400);
  require_refused("GET / http/1.1\r\n\r\n", 400);
  require_refused("GET / HTTP/1.10\r\n\r\n", 400);
}

TEST_CASE("strict: Upgrade and CONNECT requests are answered and the connection closed") {
  http::Parser p{http::Limits{}};
  size_t used = 0;
  std::string bytes = "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  REQUIRE(p.feed(bytes.data(), bytes.size(), &used) == http::ParseStatus::request_ready);
  CHECK_FALSE(p.request().keep_alive);
  http::Parser c{http::Limits{}};
  bytes = "CONNECT x:443 HTTP/1.1\r\n\r\n";
  REQUIRE(c.feed(bytes.data(), bytes.size(), &used) == http::ParseStatus::request_ready);
  CHECK_FALSE(c.request().keep_alive);
}

TEST_CASE("strict: HTTP/1.0 with Transfer-Encoding is read de-chunked, answered, then closed (RFC 9112 6.1)") {
  for (bool bytewise : {false, true}) {
    http::Parser p{http::Limits{}};
    std::string bytes =
        "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    http::ParseStatus s = http::ParseStatus::need_more;
    for (size_t at = 0; at < bytes.size() && s == http::ParseStatus::need_more;) {
      size_t used = 0;
      s = p.feed(bytes.data() + at, bytewise ? 1 : bytes.size() - at, &used);
      at += used;
    }
    REQUIRE(s == http::ParseStatus::request_ready);
    CHECK(p.request().body == "abc");
    CHECK_FALSE(p.request().keep_alive);
  }
  http::Parser kept{http::Limits{}};
  size_t used = 0;
  std::string bytes = "POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc";
  REQUIRE(kept.feed(bytes.data(), bytes.size(), &used) == http::ParseStatus::request_ready);
  CHECK(kept.request().keep_alive);
}

TEST_CASE("header fields whose names contain an underscore are dropped, named, and still counted") {
  http::Parser p{http::Limits{}};
  size_t used = 0;
  std::string bytes =
      "POST / HTTP/1.1\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 1.2.3.4\r\nContent_Length: 1\r\n"
      "Content-Length: 3\r\n\r\nabc";
  REQUIRE(p.feed(bytes.data(), bytes.size(), &used) == http::ParseStatus::request_ready);
  const http::Request& r = p.request();
  REQUIRE(r.headers.size() == 2);
  CHECK(r.headers[0].name == "X-Forwarded-For");
  CHECK(r.headers[1].name == "Content-Length");
  CHECK(r.body == "abc");
  CHECK(r.dropped_headers == "X_Forwarded_For, Content_Length");
  p.next();
  CHECK(p.request().dropped_headers.empty());
  http::Limits l;
  l.max_header_count = 2;
  CHECK(parse("GET / HTTP/1.1\r\nA_1: 1\r\nA_2: 2\r\nA_3: 3\r\n\r\n", l).error_status == 431);
}

TEST_CASE("strict: chunked trailers are not kept as headers, and count against the body limit") {
  http::Parser p{http::Limits{}};
  size_t used = 0;
  std::string bytes = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Request-Id: t\r\n\r\n";
  REQUIRE(p.feed(bytes.data(), bytes.size(), &used) == http::ParseStatus::request_ready);
  CHECK(p.request().body == "abc");
  CHECK(p.request().find_header("x-request-id") == nullptr);
  http::Limits small;
  small.max_body = 10;
  CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 12345678\r\n\r\n", small)
            .error_status == 413);
}

TEST_CASE("limits: every limit is configurable and counted the same across split reads") {
  http::Limits l;
  l.max_request_line = 20;
  l.max_header_field = 30;
  l.max_header_count = 2;
  l.max_body = 4;
  CHECK(parse("GET /" + std::string(20, 'a') + " HTTP/1.1\r\n\r\n", l).error_status == 400);
  CHECK(parse("GET / HTTP/1.1\r\nX-A: 1234567890123456789012345678\r\n\r\n", l).error_status == 431);
  CHECK(parse("GET / HTTP/1.1\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n", l).error_status == 431);
  CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", l).error_status == 413);
  CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", l).status == http::ParseStatus::request_ready);
  CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", l)
            .error_status == 413);
  CHECK_THAT(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", l).message, Catch::Contains("--limit_request_body"));
}

TEST_CASE("next() forgets a large request's buffers, so idle connections stay small") {
  http::Parser p{http::Limits{}};
  std::string body(1 << 20, 'x');
  std::string bytes = "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  size_t used = 0;
  REQUIRE(p.feed(bytes.data(), bytes.size(), &used) == http::ParseStatus::request_ready);
  p.next();
  CHECK(p.request().body.capacity() < 4096);
  std::string again = "GET / HTTP/1.1\r\n\r\n";
  CHECK(p.feed(again.data(), again.size(), &used) == http::ParseStatus::request_ready);
}
