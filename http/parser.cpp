// Request parsing on llhttp in its strict default mode (no lenient flags), with gunicorn's limits.
// llhttp 8.1 still accepts a few things a strict server must refuse because proxies in front of it
// may read them differently (request smuggling): obsolete line folding, whitespace before a header's
// colon, HTTP versions other than 1.0/1.1, transfer codings other than chunked. Those are checked here.
#include <llhttp.h>

#include <fmt/format.h>

#include "http.h"

namespace http {

namespace {
constexpr size_t kKeptCapacity = 4096;
}  // namespace

struct Parser::State {
  llhttp_t parser;
  Limits limits;
  Request request;
  ParseError error;
  bool in_header_value = false;
  bool started = false;
  bool head_complete = false;
  bool ready = false;
  bool headers_done = false;  // later header callbacks are chunked trailers: counted, never stored
  bool saw_version = false;
  size_t header_fields = 0;   // fields read, dropped ones included: the field limit counts them all
  size_t trailer_bytes = 0;
  size_t offset = 0;          // bytes of this request consumed before the current feed()
  // Obsolete line folding is invisible in llhttp's callbacks, so the head's raw bytes are scanned:
  // a line of the head that starts with SP or HT is a fold.
  enum class HeadScan : uint8_t { before_start, in_head, done } head_scan = HeadScan::before_start;
  uint32_t last_bytes = 0;    // the last bytes of the head scanned so far, newest in the low byte

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
    s->fail(400, fmt::format("Request line is too large (more than {} bytes). Send large inputs in the request body, "
                             "or raise the limit (--limit_request_line).",
                             s->limits.max_request_line));
    return -1;
  }
  // llhttp lets a tab through; no control character belongs in a target.
  for (size_t i = 0; i < len; ++i) {
    auto c = static_cast<unsigned char>(at[i]);
    if (c < 0x21 || c == 0x7f) {
      s->fail(400, fmt::format("Malformed HTTP request: control character 0x{:02x} in the request target. "
                               "Percent-encode it.",
                               c));
      return -1;
    }
  }
  return 0;
}

int on_version_complete(llhttp_t* p) {
  state_of(p)->saw_version = true;
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
    s->fail(400, fmt::format("Request line is too large ({} > {} bytes). Send large inputs in the request body, "
                             "or raise the limit (--limit_request_line).",
                             s->request_line_length(), s->limits.max_request_line));
    return -1;
  }
  return 0;
}

int check_field_size(Parser::State* s) {
  const Header& h = s->current_header();
  if (h.name.size() + 2 + h.value.size() > s->limits.max_header_field) {
    s->fail(431, fmt::format("Request header field '{}' is too large (more than {} bytes). Send large inputs in the "
                             "request body, or raise the limit (--limit_request_field_size).",
                             h.name.substr(0, 64), s->limits.max_header_field));
    return -1;
  }
  return 0;
}

// Trailers of a chunked body are read but not kept (nothing downstream reads them); their size counts
// against the body limit so that they cannot grow without bound.
int count_trailer(Parser::State* s, size_t len) {
  s->trailer_bytes += len;
  if (s->request.body.size() + s->trailer_bytes > s->limits.max_body) {
    s->fail(413, fmt::format("Request body and trailers are too large (more than {} bytes). Send less, or raise the "
                             "limit (--limit_request_body).",
                             s->limits.max_body));
    return -1;
  }
  return 0;
}

int on_header_field(llhttp_t* p, const char* at, size_t len) {
  auto* s = state_of(p);
  if (s->headers_done) return count_trailer(s, len);
  if (s->request.headers.empty() || s->in_header_value) {
    if (s->header_fields >= s->limits.max_header_count) {
      s->fail(431, fmt::format("Too many request header fields (more than {}). Send fewer headers, or raise the "
                               "limit (--limit_request_fields).",
                               s->limits.max_header_count));
      return -1;
    }
    s->request.headers.emplace_back();
    ++s->header_fields;
    s->in_header_value = false;
  }
  s->current_header().name.append(at, len);
  return check_field_size(s);
}

int on_header_value(llhttp_t* p, const char* at, size_t len) {
  auto* s = state_of(p);
  if (s->headers_done) return count_trailer(s, len);
  s->in_header_value = true;
  s->current_header().value.append(at, len);
  return check_field_size(s);
}

int on_header_value_complete(llhttp_t* p) {
  auto* s = state_of(p);
  if (s->headers_done) return 0;
  // An empty value fires no on_header_value; mark the field finished all the same.
  s->in_header_value = true;
  // llhttp 8.1 keeps "Name :" as the name "Name "; RFC 9112 5.1 requires a 400, since a proxy may
  // see a different header than we do.
  const std::string& name = s->current_header().name;
  if (name.empty()) {
    s->fail(400, "Malformed HTTP request: a header line has no name before its colon. Send 'Name: value'.");
    return -1;
  }
  if (name.back() == ' ' || name.back() == '\t') {
    s->fail(400, fmt::format("Malformed HTTP request: whitespace between the header name '{}' and its colon. "
                             "Remove it.",
                             name.substr(0, 64)));
    return -1;
  }
  // CGI and WSGI spell X-Forwarded-For and X_Forwarded_For alike (HTTP_X_FORWARDED_FOR), so a name with
  // an underscore can pass for, merge with or override the dashed header a proxy vetted (Content_Length
  // for Content-Length). Dropped, as gunicorn 22+ does by default; it still counted against the limit.
  if (name.find('_') != std::string::npos) {
    Request& r = s->request;
    if (!r.dropped_headers.empty()) r.dropped_headers += ", ";
    r.dropped_headers += name;
    r.headers.pop_back();
  }
  return 0;
}

int on_headers_complete(llhttp_t* p) {
  auto* s = state_of(p);
  Request& r = s->request;
  r.version_major = p->http_major;
  r.version_minor = p->http_minor;
  r.keep_alive = llhttp_should_keep_alive(p);
  s->headers_done = true;
  if (!s->saw_version) {
    s->fail(400, "Malformed HTTP request: the request line has no HTTP version. Send 'METHOD /path HTTP/1.1'.");
    return -1;
  }
  if (r.version_major != 1 || r.version_minor > 1) {
    s->fail(505, fmt::format("HTTP version {}.{} is not supported. Send HTTP/1.1 or HTTP/1.0.", r.version_major,
                             r.version_minor));
    return -1;
  }
  // llhttp lets "gzip, chunked" through and de-chunks it; we decode no other coding, so the body run()
  // would see is not what the client meant (RFC 9112 6.1: 501).
  if (p->flags & F_TRANSFER_ENCODING) {
    const std::string* te = r.find_header("transfer-encoding");
    if (!te || !iequals(*te, "chunked")) {
      s->fail(501, fmt::format("Transfer-Encoding '{}' is not supported. Send the body with Content-Length, or "
                               "with 'Transfer-Encoding: chunked' alone.",
                               te ? te->substr(0, 64) : std::string{}));
      return -1;
    }
  }
  // We never switch protocols (Upgrade, CONNECT): answer, then close, since what follows is not HTTP/1.
  if (p->upgrade) r.keep_alive = false;
  // HTTP/1.0 has no chunked coding: an intermediary of 1.0 may frame this body differently, so RFC 9112 6.1
  // makes its framing faulty. The body is read as chunked and answered, then the connection is closed.
  if ((p->flags & F_TRANSFER_ENCODING) && r.version_minor == 0) r.keep_alive = false;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > s->limits.max_body) {
    s->fail(413, fmt::format("Request body is too large ({} > {} bytes). Send less, or raise the limit "
                             "(--limit_request_body).",
                             p->content_length, s->limits.max_body));
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
    s->fail(413, fmt::format("Request body is too large (more than {} bytes). Send less, or raise the limit "
                             "(--limit_request_body).",
                             s->limits.max_body));
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

// Scans the consumed bytes of the head for obsolete line folding (RFC 9112 5.2: a server must reject
// it or replace it; llhttp silently joins the lines) and bare LFs. False when one was found.
bool scan_head(Parser::State& s, const char* data, size_t len) {
  using Scan = Parser::State::HeadScan;
  for (size_t i = 0; i < len && s.head_scan != Scan::done; ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    if (s.head_scan == Scan::before_start) {
      if (c == '\r' || c == '\n') continue;  // empty lines before a request are allowed
      s.head_scan = Scan::in_head;
    }
    if ((s.last_bytes & 0xffff) == 0x0d0a && (c == ' ' || c == '\t')) {
      s.fail(400, fmt::format("Malformed HTTP request: obsolete line folding (a header line starting with a space or "
                              "tab) at byte {} of the request. Send each header on one line.",
                              s.offset + i));
      return false;
    }
    // llhttp takes a bare LF after the request line; a head whose lines end differently for different
    // parsers is a smuggling vector, so every line of ours ends in CRLF.
    if (c == '\n' && (s.last_bytes & 0xff) != '\r') {
      s.fail(400, fmt::format("Malformed HTTP request: a line of the head ends in a bare LF at byte {} of the request. "
                              "End every line with CRLF.",
                              s.offset + i));
      return false;
    }
    s.last_bytes = (s.last_bytes << 8) | c;
    if (s.last_bytes == 0x0d0a0d0a) s.head_scan = Scan::done;
  }
  return true;
}

int status_for(llhttp_errno_t err, const char* reason) {
  switch (err) {
    case HPE_INVALID_VERSION:  // also "Expected CRLF after version", which is no version problem
      return std::string_view(reason) == "Invalid HTTP version" ? 505 : 400;
    default: return 400;
  }
}

// One settings table for every parser: the callbacks never change.
const llhttp_settings_t* shared_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = on_message_begin;
    s.on_url = on_url;
    s.on_method_complete = on_method_complete;
    s.on_url_complete = on_url_complete;
    s.on_version_complete = on_version_complete;
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_header_value_complete = on_header_value_complete;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    return s;
  }();
  return &settings;
}

}  // namespace

Parser::Parser(const Limits& limits) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.limits = limits;
  llhttp_init(&s.parser, HTTP_REQUEST, shared_settings());
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
  if (err == HPE_OK || err == HPE_PAUSED) {
    *consumed = err == HPE_OK ? len : static_cast<size_t>(llhttp_get_error_pos(&s.parser) - data);
    if (!scan_head(s, data, *consumed)) return ParseStatus::error;
    s.offset += *consumed;
    if (err == HPE_OK) return ParseStatus::need_more;
    llhttp_resume(&s.parser);
    if (s.ready) return ParseStatus::request_ready;
    if (s.head_complete && !head_was_complete) return ParseStatus::head_complete;
    return ParseStatus::need_more;
  }
  const char* pos = llhttp_get_error_pos(&s.parser);
  *consumed = pos ? static_cast<size_t>(pos - data) : len;
  if (!s.error.status) {
    const char* reason = llhttp_get_error_reason(&s.parser);
    int status = status_for(err, reason);
    if (err == HPE_PAUSED_H2_UPGRADE)
      s.fail(505, "HTTP/2 is not supported. Send HTTP/1.1 (without the HTTP/2 preface).");
    else if (status == 505)
      s.fail(505, fmt::format("HTTP version not supported (at byte {} of the request). Send HTTP/1.1 or HTTP/1.0.",
                              s.offset + *consumed));
    else
      s.fail(status,
             fmt::format("Malformed HTTP request: {} (at byte {} of the request). Send a well-formed HTTP/1.1 request.",
                         reason, s.offset + *consumed));
  }
  return ParseStatus::error;
}

Request& Parser::request() { return state_->request; }
const ParseError& Parser::error() const { return state_->error; }
bool Parser::in_progress() const { return state_->started && !state_->ready; }
bool Parser::head_done() const { return state_->headers_done; }

// Each field is reset by name (like the settings table above lists each callback by name): a tool
// sees the two lists as one shape, but they share no logic, so they stay apart on purpose.
void Parser::next() {
  State& s = *state_;
  s.request.clear();
  s.in_header_value = false;
  s.started = false;
  s.head_complete = false;
  s.ready = false;
  s.headers_done = false;
  s.saw_version = false;
  s.header_fields = 0;
  s.trailer_bytes = 0;
  s.offset = 0;
  s.head_scan = State::HeadScan::before_start;
  s.last_bytes = 0;
}

void Request::clear() {
  method.clear();
  target.clear();
  headers.clear();
  body.clear();
  dropped_headers.clear();
  // An idle keep-alive connection keeps no large buffer from its last request (memory per connection).
  if (body.capacity() > kKeptCapacity) std::string().swap(body);
  if (target.capacity() > kKeptCapacity) std::string().swap(target);
  if (dropped_headers.capacity() > kKeptCapacity) std::string().swap(dropped_headers);
  if (headers.capacity() > 32) std::vector<Header>().swap(headers);
  version_major = 1;
  version_minor = 1;
  keep_alive = true;
  expects_continue = false;
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
