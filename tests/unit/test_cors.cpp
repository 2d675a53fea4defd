// http/: CORS headers with flask-cors's rules (docs/behaviour.md 3.8).
#include <catch2/catch.hpp>

#include "../../http/http.h"

namespace {

std::string headers_for(const http::CorsPolicy& policy, std::string method,
                        std::initializer_list<std::pair<const char*, std::string>> headers) {
  http::Request r;
  r.method = std::move(method);
  for (auto& [n, v] : headers) r.headers.push_back({n, v});
  std::string out;
  policy.append_headers(r, out);
  return out;
}

}  // namespace

TEST_CASE("origins are split on commas and stripped") {
  auto policy = http::CorsPolicy::parse(" www.microsoft.com ,www.bing.com,, ");
  REQUIRE(policy.origins == std::vector<std::string>{"www.microsoft.com", "www.bing.com"});
  CHECK_FALSE(http::CorsPolicy::parse("").enabled());
}

TEST_CASE("an allowed Origin is echoed with Vary, any other gets nothing") {
  auto policy = http::CorsPolicy::parse("www.microsoft.com, www.bing.com");
  CHECK(headers_for(policy, "GET", {{"Origin", "www.microsoft.com"}}) ==
        "Access-Control-Allow-Origin: www.microsoft.com\r\nVary: Origin\r\n");
  CHECK(headers_for(policy, "GET", {{"Origin", "WWW.BING.COM"}}) ==
        "Access-Control-Allow-Origin: WWW.BING.COM\r\nVary: Origin\r\n");
  CHECK(headers_for(policy, "OPTIONS", {{"Origin", "www.azure.com"}}).empty());
}

TEST_CASE("without an Origin: * for a wildcard, else the first plain origin in sorted order") {
  CHECK(headers_for(http::CorsPolicy::parse("*"), "GET", {}) == "Access-Control-Allow-Origin: *\r\n");
  CHECK(headers_for(http::CorsPolicy::parse("http://b.example, http://a.example"), "GET", {}) ==
        "Access-Control-Allow-Origin: http://a.example\r\nVary: Origin\r\n");
}

TEST_CASE("a preflight also gets the methods and the echoed request headers") {
  auto policy = http::CorsPolicy::parse("www.microsoft.com");
  std::string out = headers_for(policy, "OPTIONS",
                                {{"Origin", "www.microsoft.com"},
                                 {"Access-Control-Request-Method", "POST"},
                                 {"Access-Control-Request-Headers", "x-a, content-type"}});
  CHECK_THAT(out, Catch::Contains("Access-Control-Allow-Methods: GET, POST\r\n"));
  CHECK_THAT(out, Catch::Contains("Access-Control-Allow-Headers: x-a, content-type\r\n"));
  CHECK_THAT(headers_for(policy, "OPTIONS", {{"Origin", "www.microsoft.com"}}),
             !Catch::Contains("Access-Control-Allow-Methods"));
}

TEST_CASE("origins with regex characters are patterns, matched from the start") {
  auto policy = http::CorsPolicy::parse("https://.*\\.example\\.com");
  CHECK_THAT(headers_for(policy, "GET", {{"Origin", "https://app.example.com"}}),
             Catch::Contains("Access-Control-Allow-Origin: https://app.example.com"));
  CHECK(headers_for(policy, "GET", {{"Origin", "http://evil.com"}}).empty());
  CHECK(headers_for(policy, "GET", {}).empty());  // no plain origin to name
}
