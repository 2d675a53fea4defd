// http/: the request-id rules of docs/behaviour.md 3.3, row by row.
#include <catch2/catch.hpp>

#include <regex>

#include "../../http/http.h"

namespace {

http::Request with(std::initializer_list<std::pair<const char*, std::string>> headers) {
  http::Request r;
  for (auto& [n, v] : headers) r.headers.push_back({n, v});
  return r;
}

bool is_uuid4(const std::string& s) {
  static const std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, re);
}

using Outcome = http::RequestIds::Outcome;

}  // namespace

TEST_CASE("no id headers: a generated UUID4 as x-request-id and x-ms-request-id") {
  auto ids = http::resolve_request_ids(with({}));
  CHECK(ids.outcome == Outcome::ok);
  CHECK(is_uuid4(ids.request_id));
  CHECK(ids.legacy_id == ids.request_id);
  CHECK(ids.client_id.empty());
  CHECK_FALSE(ids.deprecated_header_used);
}

TEST_CASE("the table of docs/behaviour.md 3.3") {
  SECTION("R") {
    auto ids = http::resolve_request_ids(with({{"X-Request-Id", "R"}}));
    CHECK(ids.request_id == "R");
    CHECK(ids.legacy_id == "R");
    CHECK(ids.client_id.empty());
  }
  SECTION("B") {
    auto ids = http::resolve_request_ids(with({{"x-ms-request-id", "B"}}));
    CHECK(is_uuid4(ids.request_id));
    CHECK(ids.legacy_id == "B");
    CHECK(ids.client_id == "B");
    CHECK(ids.deprecated_header_used);
  }
  SECTION("C") {
    auto ids = http::resolve_request_ids(with({{"x-ms-client-request-id", "C"}}));
    CHECK(ids.legacy_id == "C");
    CHECK(ids.client_id == "C");
  }
  SECTION("R B") {
    auto ids = http::resolve_request_ids(with({{"x-request-id", "R"}, {"x-ms-request-id", "B"}}));
    CHECK(ids.request_id == "R");
    CHECK(ids.legacy_id == "B");
    CHECK(ids.client_id == "B");
  }
  SECTION("B C") {
    auto ids = http::resolve_request_ids(with({{"x-ms-request-id", "B"}, {"x-ms-client-request-id", "C"}}));
    CHECK(ids.legacy_id == "B");
    CHECK(ids.client_id == "C");
  }
  SECTION("R C") {
    auto ids = http::resolve_request_ids(with({{"x-request-id", "R"}, {"x-ms-client-request-id", "C"}}));
    CHECK(ids.request_id == "R");
    CHECK(ids.legacy_id == "C");
    CHECK(ids.client_id == "C");
  }
  SECTION("R B C") {
    auto ids = http::resolve_request_ids(
        with({{"x-request-id", "R"}, {"x-ms-request-id", "B"}, {"x-ms-client-request-id", "C"}}));
    CHECK(ids.request_id == "R");
    CHECK(ids.legacy_id == "B");
    CHECK(ids.client_id == "C");
  }
  SECTION("empty R") {
    auto ids = http::resolve_request_ids(with({{"x-request-id", ""}}));
    CHECK(ids.outcome == Outcome::ok);
    CHECK(ids.request_id.empty());
    CHECK(ids.legacy_id.empty());
    CHECK(ids.client_id.empty());
  }
}

TEST_CASE("length limits: 100 is fine, 101 is a 431 of the right kind") {
  CHECK(http::resolve_request_ids(with({{"x-request-id", std::string(100, 'r')}})).outcome == Outcome::ok);
  auto long_r = http::resolve_request_ids(with({{"x-request-id", std::string(101, 'r')}}));
  CHECK(long_r.outcome == Outcome::request_id_too_long);
  CHECK(long_r.request_id.empty());
  auto long_c = http::resolve_request_ids(with({{"x-request-id", "R"}, {"x-ms-client-request-id", std::string(101, 'c')}}));
  CHECK(long_c.outcome == Outcome::client_ids_too_long);
  CHECK(long_c.request_id == "R");
  CHECK(long_c.legacy_id.empty());
  CHECK(long_c.client_id.empty());
  auto long_b = http::resolve_request_ids(with({{"x-ms-request-id", std::string(101, 'b')}}));
  CHECK(long_b.outcome == Outcome::client_ids_too_long);
  CHECK(is_uuid4(long_b.request_id));
}

TEST_CASE("generated ids are distinct UUID4s") {
  std::string a = http::new_uuid4(), b = http::new_uuid4();
  CHECK(is_uuid4(a));
  CHECK(is_uuid4(b));
  CHECK(a != b);
}
