// Response heads written into a caller-owned buffer, and the JSON string escaping of Python's json.dumps.
#include <charconv>
#include <ctime>
#include <mutex>

#include <fmt/format.h>

#include "../base/base.h"
#include "http.h"

namespace http {

namespace {

struct StatusText {
  int status;
  const char* title;
  const char* upper;
};

// Werkzeug's HTTP_STATUS_CODES, which Flask upper-cases for application responses.
constexpr StatusText kStatusTexts[] = {
    {100, "Continue", "CONTINUE"},
    {101, "Switching Protocols", "SWITCHING PROTOCOLS"},
    {102, "Processing", "PROCESSING"},
    {103, "Early Hints", "EARLY HINTS"},
    {200, "OK", "OK"},
    {201, "Created", "CREATED"},
    {202, "Accepted", "ACCEPTED"},
    {203, "Non Authoritative Information", "NON AUTHORITATIVE INFORMATION"},
    {204, "No Content", "NO CONTENT"},
    {205, "Reset Content", "RESET CONTENT"},
    {206, "Partial Content", "PARTIAL CONTENT"},
    {207, "Multi Status", "MULTI STATUS"},
    {208, "Already Reported", "ALREADY REPORTED"},
    {226, "IM Used", "IM USED"},
    {300, "Multiple Choices", "MULTIPLE CHOICES"},
    {301, "Moved Permanently", "MOVED PERMANENTLY"},
    {302, "Found", "FOUND"},
    {303, "See Other", "SEE OTHER"},
    {304, "Not Modified", "NOT MODIFIED"},
    {305, "Use Proxy", "USE PROXY"},
    {306, "Switch Proxy", "SWITCH PROXY"},
    {307, "Temporary Redirect", "TEMPORARY REDIRECT"},
    {308, "Permanent Redirect", "PERMANENT REDIRECT"},
    {400, "Bad Request", "BAD REQUEST"},
    {401, "Unauthorized", "UNAUTHORIZED"},
    {402, "Payment Required", "PAYMENT REQUIRED"},
    {403, "Forbidden", "FORBIDDEN"},
    {404, "Not Found", "NOT FOUND"},
    {405, "Method Not Allowed", "METHOD NOT ALLOWED"},
    {406, "Not Acceptable", "NOT ACCEPTABLE"},
    {407, "Proxy Authentication Required", "PROXY AUTHENTICATION REQUIRED"},
    {408, "Request Timeout", "REQUEST TIMEOUT"},
    {409, "Conflict", "CONFLICT"},
    {410, "Gone", "GONE"},
    {411, "Length Required", "LENGTH REQUIRED"},
    {412, "Precondition Failed", "PRECONDITION FAILED"},
    {413, "Request Entity Too Large", "REQUEST ENTITY TOO LARGE"},
    {414, "Request URI Too Long", "REQUEST URI TOO LONG"},
    {415, "Unsupported Media Type", "UNSUPPORTED MEDIA TYPE"},
    {416, "Requested Range Not Satisfiable", "REQUESTED RANGE NOT SATISFIABLE"},
    {417, "Expectation Failed", "EXPECTATION FAILED"},
    {418, "I'm a teapot", "I'M A TEAPOT"},
    {421, "Misdirected Request", "MISDIRECTED REQUEST"},
    {422, "Unprocessable Entity", "UNPROCESSABLE ENTITY"},
    {423, "Locked", "LOCKED"},
    {424, "Failed Dependency", "FAILED DEPENDENCY"},
    {425, "Too Early", "TOO EARLY"},
    {426, "Upgrade Required", "UPGRADE REQUIRED"},
    {428, "Precondition Required", "PRECONDITION REQUIRED"},
    {429, "Too Many Requests", "TOO MANY REQUESTS"},
    {431, "Request Header Fields Too Large", "REQUEST HEADER FIELDS TOO LARGE"},
    {449, "Retry With", "RETRY WITH"},
    {451, "Unavailable For Legal Reasons", "UNAVAILABLE FOR LEGAL REASONS"},
    {500, "Internal Server Error", "INTERNAL SERVER ERROR"},
    {501, "Not Implemented", "NOT IMPLEMENTED"},
    {502, "Bad Gateway", "BAD GATEWAY"},
    {503, "Service Unavailable", "SERVICE UNAVAILABLE"},
    {504, "Gateway Timeout", "GATEWAY TIMEOUT"},
    {505, "HTTP Version Not Supported", "HTTP VERSION NOT SUPPORTED"},
    {506, "Variant Also Negotiates", "VARIANT ALSO NEGOTIATES"},
    {507, "Insufficient Storage", "INSUFFICIENT STORAGE"},
    {508, "Loop Detected", "LOOP DETECTED"},
    {510, "Not Extended", "NOT EXTENDED"},
    {511, "Network Authentication Failed", "NETWORK AUTHENTICATION FAILED"},
};

const StatusText* find_status(int status) {
  for (const StatusText& s : kStatusTexts)
    if (s.status == status) return &s;
  return nullptr;
}

}  // namespace

std::string_view reason_phrase(int status) {
  const StatusText* s = find_status(status);
  return s ? s->title : "Unknown";
}

std::string_view reason_phrase_upper(int status) {
  const StatusText* s = find_status(status);
  return s ? s->upper : "UNKNOWN";
}

namespace {

void append_decimal(std::string& out, long long value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

}  // namespace

void begin_response(std::string& out, int status, std::string_view reason, bool http10) {
  out.append(http10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
  append_decimal(out, status);
  out += ' ';
  out.append(reason);
  out.append("\r\n", 2);
}

void begin_head(std::string& out, const Head& head) {
  begin_response(out, head.status, head.reason, head.http10);
  add_header(out, "Server", "azmlinfsrv");
  if (head.date) add_date_header(out);
  if (head.connection == Head::Connection::close) add_header(out, "Connection", "close");
  else if (head.connection == Head::Connection::keep_alive_http10) add_header(out, "Connection", "keep-alive");
  if (!head.content_type.empty()) add_header(out, "Content-Type", head.content_type);
  if (head.content_length) add_header(out, "Content-Length", *head.content_length);
}

void add_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

void add_header(std::string& out, std::string_view name, size_t value) {
  out.append(name);
  out.append(": ", 2);
  append_decimal(out, static_cast<long long>(value));
  out.append("\r\n", 2);
}

void add_date_header(std::string& out) {
  thread_local base::SecondStamp date("Date: %a, %d %b %Y %H:%M:%S GMT\r\n");
  out.append(date.now());
}

void end_head(std::string& out) { out.append("\r\n", 2); }

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos) return false;
  }
  return true;
}

bool is_field_text(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_server_owned_header(std::string_view name) {
  // gunicorn's list (which the reference drops silently) and Trailer and Proxy-Connection besides.
  static constexpr std::string_view kOwned[] = {
      "connection", "keep-alive", "transfer-encoding", "te", "trailer", "trailers", "upgrade",
      "proxy-connection", "proxy-authenticate", "proxy-authorization", "server", "date"};
  for (std::string_view owned : kOwned)
    if (iequals(name, owned)) return true;
  return false;
}

std::string json_message(std::string_view text) {
  std::string out = "{\"message\": \"";
  base::append_json_string(out, text, base::JsonText::ensure_ascii);
  out.append("\"}");
  return out;
}

}  // namespace http
