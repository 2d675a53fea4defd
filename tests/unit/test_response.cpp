// http/: response heads, reason phrases, JSON escaping like json.dumps.
#include <ctime>

#include <catch2/catch.hpp>

#include "../../http/http.h"

TEST_CASE("a response head is status line, headers, blank line") {
  std::string out;
  http::begin_response(out, 404, http::reason_phrase_upper(404));
  http::add_header(out, "Content-Type", "application/json");
  http::add_header(out, "Content-Length", size_t{42});
  http::end_head(out);
  CHECK(out == "HTTP/1.1 404 NOT FOUND\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n");
}

// The Date line is the current second's: replaced by a fixed text so the rest compares exactly.
static std::string without_date(std::string head) {
  auto at = head.find("Date: ");
  if (at == std::string::npos) return head;
  auto end = head.find("\r\n", at);
  return head.replace(at, end + 2 - at, "Date: *\r\n");
}

TEST_CASE("begin_head: status line, Server, Date, the connection header, then the body's type and length") {
  std::string out;
  http::Head ok;
  ok.status = 200;
  ok.reason = "OK";
  http::begin_head(out, ok);
  CHECK(without_date(out) == "HTTP/1.1 200 OK\r\nServer: azmlinfsrv\r\nDate: *\r\n");

  out.clear();
  http::begin_head(out, {.status = 413,
                         .reason = http::reason_phrase(413),
                         .connection = http::Head::Connection::close,
                         .content_type = "application/json",
                         .content_length = size_t{17}});
  CHECK(without_date(out) ==
        "HTTP/1.1 413 Request Entity Too Large\r\nServer: azmlinfsrv\r\nDate: *\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nContent-Length: 17\r\n");

  out.clear();
  http::Head not_found;
  not_found.status = 404;
  not_found.reason = http::reason_phrase_upper(404);
  not_found.connection = http::Head::Connection::keep_alive_http10;
  not_found.content_length = size_t{0};
  http::begin_head(out, not_found);
  CHECK(without_date(out) ==
        "HTTP/1.1 404 NOT FOUND\r\nServer: azmlinfsrv\r\nDate: *\r\nConnection: keep-alive\r\nContent-Length: 0\r\n");

  out.clear();
  not_found.http10 = true;  // an HTTP/1.0 request is answered in its version, as gunicorn does
  http::begin_head(out, not_found);
  CHECK(without_date(out) ==
        "HTTP/1.0 404 NOT FOUND\r\nServer: azmlinfsrv\r\nDate: *\r\nConnection: keep-alive\r\nContent-Length: 0\r\n");
}

TEST_CASE("begin_head without a date writes no Date line (a signal handler's pre-rendered head)") {
  std::string out;
  http::begin_head(out, {.status = 500,
                         .reason = http::reason_phrase_upper(500),
                         .connection = http::Head::Connection::close,
                         .date = false,
                         .content_type = "application/json",
                         .content_length = std::nullopt});
  CHECK(out ==
        "HTTP/1.1 500 INTERNAL SERVER ERROR\r\nServer: azmlinfsrv\r\nConnection: close\r\n"
        "Content-Type: application/json\r\n");
}

TEST_CASE("reason phrases follow Werkzeug: upper case for the app, title case for the server") {
  CHECK(http::reason_phrase_upper(200) == "OK");
  CHECK(http::reason_phrase_upper(431) == "REQUEST HEADER FIELDS TOO LARGE");
  CHECK(http::reason_phrase_upper(415) == "UNSUPPORTED MEDIA TYPE");
  CHECK(http::reason_phrase(400) == "Bad Request");
  CHECK(http::reason_phrase_upper(299) == "UNKNOWN");
}

TEST_CASE("the Date header is an RFC 7231 date") {
  std::string out;
  http::add_date_header(out);
  REQUIRE(out.size() == std::string("Date: Wed, 25 Nov 2026 20:35:12 GMT\r\n").size());
  CHECK(out.rfind("Date: ", 0) == 0);
  CHECK(out.substr(out.size() - 6) == " GMT\r\n");
}

TEST_CASE("JSON messages match json.dumps byte for byte") {
  CHECK(http::json_message("hi") == "{\"message\": \"hi\"}");
  CHECK(http::json_message("a\"b\\c\nd\te") == "{\"message\": \"a\\\"b\\\\c\\nd\\te\"}");
  CHECK(http::json_message("\x01") == "{\"message\": \"\\u0001\"}");
  CHECK(http::json_message("\xc3\xa9") == "{\"message\": \"\\u00e9\"}");            // é
  CHECK(http::json_message("\xf0\x9f\x98\x80") == "{\"message\": \"\\ud83d\\ude00\"}");  // 😀 as a surrogate pair
  CHECK(http::json_message("\xff") == "{\"message\": \"\\ufffd\"}");
  CHECK(http::json_message("Method not allowed").size() == 33);  // the contract's Content-Length 33
}

TEST_CASE("what a response head may carry from an application: token names, printable values and reasons") {
  CHECK(http::is_token("X-Custom_1.a!#$%&'*+^`|~"));
  for (std::string_view bad : {"", "X A", "X:Y", "X\r\nY", "X\x01", "\xc3\xa9", "X\"Y", "(X)"})
    CHECK_FALSE(http::is_token(bad));
  CHECK(http::is_field_text(""));
  CHECK(http::is_field_text("a\tb c \xc3\xa9 ~"));  // a tab and obs-text are allowed
  using namespace std::string_view_literals;
  for (std::string_view bad : {"a\rb"sv, "a\nb"sv, "a\0b"sv, "a\x01"sv, "a\x7f"sv})
    CHECK_FALSE(http::is_field_text(bad));
  CHECK(http::trim_ows(" \t a b \t") == "a b");
  CHECK(http::trim_ows("  ").empty());
}

TEST_CASE("the headers the server owns, and the statuses without a body") {
  for (std::string_view owned : {"Connection", "keep-alive", "TRANSFER-ENCODING", "TE", "Trailer", "Upgrade",
                                 "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Server", "Date"})
    CHECK(http::is_server_owned_header(owned));
  for (std::string_view app : {"Content-Length", "Content-Type", "X-Te", "Dates", "Set-Cookie"})
    CHECK_FALSE(http::is_server_owned_header(app));
  for (int status : {100, 101, 103, 199, 204, 304}) CHECK(http::status_has_no_body(status));
  for (int status : {200, 201, 205, 299, 303, 305, 404, 500}) CHECK_FALSE(http::status_has_no_body(status));
}
