// http/: request parsing, pipelining and the limits.
#include <catch2/catch.hpp>

#include "../../http/http.h"

namespace {

struct Fed {
  http::ParseStatus status;
  size_t consumed;
};

Fed feed_all(http::Parser& p, std::string_view bytes) {
  size_t consumed = 0;
  http::ParseStatus s = p.feed(bytes.data(), bytes.size(), &consumed);
  return {s, consumed};
}

}  // namespace

TEST_CASE("a simple GET is parsed with its target, headers and version") {
  http::Parser p{http::Limits{}};
  auto r = feed_all(p, "GET /score?a=1&b=x HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\n\r\n");
  REQUIRE(r.status == http::ParseStatus::request_ready);
  const http::Request& req = p.request();
  CHECK(req.method == "GET");
  CHECK(req.target == "/score?a=1&b=x");
  CHECK(req.path() == "/score");
  CHECK(req.query() == "a=1&b=x");
  REQUIRE(req.headers.size() == 2);
  CHECK(req.headers[1].name == "X-Request-Id");
  CHECK(*req.find_header("x-request-id") == "abc");
  CHECK(req.find_header("x-other") == nullptr);
  CHECK(req.keep_alive);
}

TEST_CASE("a request split into single bytes parses the same") {
  http::Parser p{http::Limits{}};
  std::string bytes = "POST /score HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";
  http::ParseStatus last = http::ParseStatus::need_more;
  for (char c : bytes) {
    size_t used = 0;
    last = p.feed(&c, 1, &used);
    CHECK(used == 1);
  }
  REQUIRE(last == http::ParseStatus::request_ready);
  CHECK(p.request().body == "hello");
  CHECK(*p.request().find_header("content-type") == "text/plain");
}

TEST_CASE("chunked bodies are de-chunked") {
  http::Parser p{http::Limits{}};
  auto r = feed_all(p, "POST /score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  REQUIRE(r.status == http::ParseStatus::request_ready);
  CHECK(p.request().body == "abcde");
}

TEST_CASE("pipelined requests come out one at a time, in order") {
  http::Parser p{http::Limits{}};
  std::string bytes = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  auto r = feed_all(p, bytes);
  REQUIRE(r.status == http::ParseStatus::request_ready);
  CHECK(p.request().target == "/a");
  CHECK(r.consumed == bytes.size() / 2);
  p.next();
  auto r2 = feed_all(p, std::string_view(bytes).substr(r.consumed));
  REQUIRE(r2.status == http::ParseStatus::request_ready);
  CHECK(p.request().target == "/b");
}

TEST_CASE("Connection: close and HTTP/1.0 turn keep-alive off") {
  http::Parser p{http::Limits{}};
  feed_all(p, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  CHECK_FALSE(p.request().keep_alive);
  http::Parser p10{http::Limits{}};
  feed_all(p10, "GET / HTTP/1.0\r\n\r\n");
  CHECK_FALSE(p10.request().keep_alive);
  CHECK(p10.request().version_minor == 0);
}

TEST_CASE("Expect: 100-continue stops after the head") {
  http::Parser p{http::Limits{}};
  std::string head = "POST /score HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
  auto r = feed_all(p, head + "hi");
  REQUIRE(r.status == http::ParseStatus::head_complete);
  CHECK(r.consumed == head.size());
  auto r2 = feed_all(p, "hi");
  REQUIRE(r2.status == http::ParseStatus::request_ready);
  CHECK(p.request().body == "hi");
}

TEST_CASE("limits: request line over 4094 bytes is a 400") {
  http::Parser p{http::Limits{}};
  std::string line = "GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n";
  auto r = feed_all(p, line);
  REQUIRE(r.status == http::ParseStatus::error);
  CHECK(p.error().status == 400);
  CHECK_THAT(p.error().message, Catch::Contains("Request line is too large"));
}

TEST_CASE("limits: a request line of exactly 4094 bytes is accepted") {
  http::Parser p{http::Limits{}};
  // "GET " + target + " HTTP/1.1" = 4094
  std::string target = "/" + std::string(4094 - 4 - 9 - 1, 'a');
  auto r = feed_all(p, "GET " + target + " HTTP/1.1\r\n\r\n");
  CHECK(r.status == http::ParseStatus::request_ready);
}

TEST_CASE("limits: one header field over 8190 bytes is a 431") {
  http::Parser p{http::Limits{}};
  auto r = feed_all(p, "GET / HTTP/1.1\r\nX-Big: " + std::string(8200, 'v') + "\r\n\r\n");
  REQUIRE(r.status == http::ParseStatus::error);
  CHECK(p.error().status == 431);
}

TEST_CASE("limits: more than 100 header fields is a 431, 100 is fine") {
  auto request_with = [](int n) {
    std::string s = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  http::Parser ok{http::Limits{}};
  CHECK(feed_all(ok, request_with(100)).status == http::ParseStatus::request_ready);
  http::Parser bad{http::Limits{}};
  REQUIRE(feed_all(bad, request_with(101)).status == http::ParseStatus::error);
  CHECK(bad.error().status == 431);
}

TEST_CASE("limits: a Content-Length over the body limit is refused before the body") {
  http::Limits limits;
  limits.max_body = 10;
  http::Parser p{limits};
  auto r = feed_all(p, "POST /score HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
  REQUIRE(r.status == http::ParseStatus::error);
  CHECK(p.error().status == 413);
  http::Parser chunked{limits};
  auto c = feed_all(chunked, "POST /score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n");
  REQUIRE(c.status == http::ParseStatus::error);
  CHECK(chunked.error().status == 413);
}

TEST_CASE("malformed requests are errors, never requests") {
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "GET / HTTP/1.1\r\nBad Header\r\n\r\n"}) {
    http::Parser p{http::Limits{}};
    auto r = feed_all(p, bad);
    CHECK(r.status == http::ParseStatus::error);
    CHECK(p.error().status == 400);
    CHECK_FALSE(p.error().message.empty());
  }
}

TEST_CASE("paths are percent-decoded and repeated slashes merged for routing") {
  CHECK(http::normalize_path("/sc%6Fre") == "/score");
  CHECK(http::normalize_path("//score") == "/score");
  CHECK(http::normalize_path("/score/") == "/score/");
  CHECK(http::normalize_path("/%zz") == "/%zz");
}

TEST_CASE("query parameters are found by name and decoded") {
  CHECK(http::query_param("version=3.1", "version") == std::optional<std::string>("3.1"));
  CHECK(http::query_param("a=1&version=3&version=2", "version") == std::optional<std::string>("3"));
  CHECK(http::query_param("v%65rsion=a+b%21", "version") == std::optional<std::string>("a b!"));
  CHECK(http::query_param("version", "version") == std::optional<std::string>(""));
  CHECK_FALSE(http::query_param("versions=1&x=2", "version").has_value());
  CHECK_FALSE(http::query_param("", "version").has_value());
}
