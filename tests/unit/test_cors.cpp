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

TEST_CASE("a preflight also gets the methods and the requested headers, sorted") {
  auto policy = http::CorsPolicy::parse("www.microsoft.com");
  std::string out = headers_for(policy, "OPTIONS",
                                {{"Origin", "www.microsoft.com"},
                                 {"Access-Control-Request-Method", "POST"},
                                 {"Access-Control-Request-Headers", "x-a, content-type"}});
  CHECK(out ==
        "Access-Control-Allow-Origin: www.microsoft.com\r\nAccess-Control-Allow-Headers: content-type, x-a\r\n"
        "Access-Control-Allow-Methods: GET, POST\r\n");  // one origin: no Vary
  CHECK_THAT(headers_for(policy, "OPTIONS", {{"Origin", "www.microsoft.com"}}),
             !Catch::Contains("Access-Control-Allow-Methods"));
}

TEST_CASE("Access-Control-Allow-Headers: split on commas, stripped as Python strips, sorted by byte, kept as sent") {
  auto policy = http::CorsPolicy::parse("www.microsoft.com");
  auto allowed = [&](std::string asked) {
    std::string out = headers_for(policy, "OPTIONS",
                                  {{"Origin", "www.microsoft.com"},
                                   {"Access-Control-Request-Method", "get"},
                                   {"Access-Control-Request-Headers", asked}});
    auto at = out.find("Access-Control-Allow-Headers: ");
    if (at == std::string::npos) return std::string("(none)");
    at += 30;
    return out.substr(at, out.find("\r\n", at) - at);
  };
  CHECK(allowed("content-type,authorization") == "authorization, content-type");
  CHECK(allowed("B, a, A, b, a") == "A, B, a, a, b");
  CHECK(allowed(" x ,, y") == ", x, y");
  CHECK(allowed("\xa0x-\xe9\x85, x-z") == "x-z, x-\xe9");  // NBSP and NEL are whitespace to str.strip()
  CHECK(allowed("") == "(none)");
}

TEST_CASE("the preflight's method must be a substring of \"GET, POST\" once upper-cased, as flask-cors tests it") {
  auto policy = http::CorsPolicy::parse("www.microsoft.com");
  auto preflight = [&](std::string method) {
    return headers_for(policy, "OPTIONS",
                       {{"Origin", "www.microsoft.com"}, {"Access-Control-Request-Method", method}})
               .find("Access-Control-Allow-Methods") != std::string::npos;
  };
  CHECK(preflight("POST"));
  CHECK(preflight("get"));
  CHECK(preflight("T, P"));
  CHECK_FALSE(preflight("DELETE"));
  CHECK_FALSE(preflight(""));
}

TEST_CASE("Vary: Origin only with several origins or a pattern") {
  CHECK(headers_for(http::CorsPolicy::parse("www.microsoft.com"), "GET", {{"Origin", "www.microsoft.com"}}) ==
        "Access-Control-Allow-Origin: www.microsoft.com\r\n");
  CHECK(headers_for(http::CorsPolicy::parse("*"), "GET", {{"Origin", "http://x"}}) ==
        "Access-Control-Allow-Origin: http://x\r\nVary: Origin\r\n");
}

TEST_CASE("origins with regex characters are patterns, matched from the start") {
  auto policy = http::CorsPolicy::parse("https://.*\\.example\\.com");
  CHECK_THAT(headers_for(policy, "GET", {{"Origin", "https://app.example.com"}}),
             Catch::Contains("Access-Control-Allow-Origin: https://app.example.com"));
  CHECK(headers_for(policy, "GET", {{"Origin", "http://evil.com"}}).empty());
  CHECK(headers_for(policy, "GET", {}).empty());  // no plain origin to name
}
