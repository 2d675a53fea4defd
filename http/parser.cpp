// Request parsing on llhttp in its strict default mode (no lenient flags), with gunicorn's limits.
#include <llhttp.h>

#include <fmt/format.h>

#include "http.h"

namespace http {

struct Parser::State {
  llhttp_t parser;
  llhttp_settings_t settings;
  Limits limits;
  Request request;
  ParseError error;
  bool in_header_value = false;
  bool started = false;
  bool head_complete = false;
  bool ready = false;

  void fail(int status, std::string message) {
    error.status = status;
    error.message = std::move(message);
  }
  size_t request_line_length() const {
    return request.method.size() + 1 + request.target.size() + 1 + 8;  // "M T HTTP/1.1"
  }
  Header& current_header() { return request.headers.back(); }
};

namespace {

Parser::State* state_of(llhttp_t* p) { return static_cast<Parser::State*>(p->data); }

int on_message_begin(llhttp_t* p) {
  auto* s = state_of(p);
  s->started = true;
  return 0;
}

int on_url(llhttp_t* p, const char* at, size_t len) {
  auto* s = state_of(p);
  s->request.target.append(at, len);
  if (s->request.target.size() > s->limits.max_request_line) {
    s->fail(400, fmt::format("Request line is too large (more than {} bytes). Send large inputs in the request body.",
                             s->limits.max_request_line));
    return -1;
  }
  return 0;
}

int on_method_complete(llhttp_t* p) {
  auto* s = state_of(p);
  s->request.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  return 0;
}

int on_url_complete(llhttp_t* p) {
  auto* s = state_of(p);
  if (s->request.method.empty()) s->request.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  if (s->request_line_length() > s->limits.max_request_line) {
    s->fail(400, fmt::format("Request line is too large ({} > {} bytes). Send large inputs in the request body.",
                             s->request_line_length(), s->limits.max_request_line));
    return -1;
  }
  return 0;
}

int check_field_size(Parser::State* s) {
  const Header& h = s->current_header();
  if (h.name.size() + 2 + h.value.size() > s->limits.max_header_field) {
    s->fail(431, fmt::format("Request header field '{}' is too large (more than {} bytes).",
                             h.name.substr(0, 64), s->limits.max_header_field));
    return -1;
  }
  return 0;
}

int on_header_field(llhttp_t* p, const char* at, size_t len) {
  auto* s = state_of(p);
  if (s->request.headers.empty() || s->in_header_value) {
    if (s->request.headers.size() >= s->limits.max_header_count) {
      s->fail(431, fmt::format("Too many request header fields (more than {}).", s->limits.max_header_count));
      return -1;
    }
    s->request.headers.emplace_back();
    s->in_header_value = false;
  }
  s->current_header().name.append(at, len);
  return check_field_size(s);
}

int on_header_value(llhttp_t* p, const char* at, size_t len) {
  auto* s = state_of(p);
  s->in_header_value = true;
  s->current_header().value.append(at, len);
  return check_field_size(s);
}

int on_header_value_complete(llhttp_t* p) {
  // An empty value fires no on_header_value; mark the field finished all the same.
  state_of(p)->in_header_value = true;
  return 0;
}

int on_headers_complete(llhttp_t* p) {
  auto* s = state_of(p);
  Request& r = s->request;
  r.version_major = p->http_major;
  r.version_minor = p->http_minor;
  r.keep_alive = llhttp_should_keep_alive(p);
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > s->limits.max_body) {
    s->fail(413, fmt::format("Request body is too large ({} > {} bytes).", p->content_length, s->limits.max_body));
    return -1;
  }
  if (const std::string* expect = r.find_header("expect"); expect && iequals(*expect, "100-continue"))
    r.expects_continue = r.version_major == 1 && r.version_minor >= 1;
  // Pause only when the client waits for "100 Continue": the caller must answer before the body comes.
  if (!r.expects_continue) return 0;
  s->head_complete = true;
  return HPE_PAUSED;
}

int on_body(llhttp_t* p, const char* at, size_t len) {
  auto* s = state_of(p);
  if (s->request.body.size() + len > s->limits.max_body) {
    s->fail(413, fmt::format("Request body is too large (more than {} bytes).", s->limits.max_body));
    return -1;
  }
  s->request.body.append(at, len);
  return 0;
}

int on_message_complete(llhttp_t* p) {
  auto* s = state_of(p);
  s->ready = true;
  return HPE_PAUSED;
}

int status_for(llhttp_errno_t err) {
  switch (err) {
    case HPE_INVALID_VERSION: return 505;
    default: return 400;
  }
}

}  // namespace

Parser::Parser(const Limits& limits) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.limits = limits;
  llhttp_settings_init(&s.settings);
  s.settings.on_message_begin = on_message_begin;
  s.settings.on_url = on_url;
  s.settings.on_method_complete = on_method_complete;
  s.settings.on_url_complete = on_url_complete;
  s.settings.on_header_field = on_header_field;
  s.settings.on_header_value = on_header_value;
  s.settings.on_header_value_complete = on_header_value_complete;
  s.settings.on_headers_complete = on_headers_complete;
  s.settings.on_body = on_body;
  s.settings.on_message_complete = on_message_complete;
  llhttp_init(&s.parser, HTTP_REQUEST, &s.settings);
  s.parser.data = &s;
}

Parser::~Parser() = default;

ParseStatus Parser::feed(const char* data, size_t len, size_t* consumed) {
  State& s = *state_;
  *consumed = 0;
  if (s.error.status) return ParseStatus::error;
  if (s.ready) return ParseStatus::request_ready;
  if (len == 0) return ParseStatus::need_more;
  bool head_was_complete = s.head_complete;
  llhttp_errno_t err = llhttp_execute(&s.parser, data, len);
  if (err == HPE_OK) {
    *consumed = len;
    return ParseStatus::need_more;
  }
  if (err == HPE_PAUSED) {
    *consumed = static_cast<size_t>(llhttp_get_error_pos(&s.parser) - data);
    llhttp_resume(&s.parser);
    if (s.ready) return ParseStatus::request_ready;
    if (s.head_complete && !head_was_complete) return ParseStatus::head_complete;
    return ParseStatus::need_more;
  }
  if (!s.error.status) {
    s.fail(status_for(err), fmt::format("Malformed HTTP request: {}.", llhttp_get_error_reason(&s.parser)));
  }
  const char* pos = llhttp_get_error_pos(&s.parser);
  *consumed = pos ? static_cast<size_t>(pos - data) : len;
  return ParseStatus::error;
}

Request& Parser::request() { return state_->request; }
const ParseError& Parser::error() const { return state_->error; }
bool Parser::in_progress() const { return state_->started && !state_->ready; }

void Parser::next() {
  State& s = *state_;
  s.request.method.clear();
  s.request.target.clear();
  s.request.headers.clear();
  s.request.body.clear();
  s.request.expects_continue = false;
  s.in_header_value = false;
  s.started = false;
  s.head_complete = false;
  s.ready = false;
}

std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t = target;
  size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

const std::string* Request::find_header(std::string_view name) const {
  for (const Header& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX at raw[i] into *out and advances i past it; false (nothing consumed) when not an escape.
bool take_escape(std::string_view raw, size_t& i, char* out) {
  if (raw[i] != '%' || i + 2 >= raw.size()) return false;
  int h = hex_value(raw[i + 1]), l = hex_value(raw[i + 2]);
  if (h < 0 || l < 0) return false;
  *out = static_cast<char>(h * 16 + l);
  i += 2;
  return true;
}

std::string decode_query_part(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '+') c = ' ';
    else take_escape(raw, i, &c);
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string normalize_path(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    take_escape(raw, i, &c);
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (decode_query_part(pair.substr(0, eq)) != name) continue;
    return eq == std::string_view::npos ? std::string{} : decode_query_part(pair.substr(eq + 1));
  }
  return std::nullopt;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

}  // namespace http
