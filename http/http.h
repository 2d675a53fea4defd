// http/: HTTP/1.1 on llhttp. Request parsing with limits, response writing, status texts and the
// contract's header rules (request ids). Knows nothing of sockets or Python: bytes in, bytes out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace http {

// Defaults are gunicorn's (docs/behaviour.md 2.1) plus the body limit of docs/differences.md.
struct Limits {
  size_t max_request_line = 4094;
  size_t max_header_field = 8190;  // one "Name: value" line
  size_t max_header_count = 100;
  size_t max_body = size_t{100} << 20;
};

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method;  // "GET", as llhttp names it
  std::string target;  // the request-target exactly as sent: "/score?a=1"
  std::vector<Header> headers;
  std::string body;    // de-chunked
  // Names of the header fields dropped because they contain an underscore ("X_Forwarded_For, A_B"):
  // the worker logs them. Empty almost always.
  std::string dropped_headers;
  int version_major = 1;
  int version_minor = 1;
  bool keep_alive = true;
  bool expects_continue = false;

  std::string_view path() const;   // target before '?', not decoded
  std::string_view query() const;  // target after '?', raw; empty when none
  // First header with this name (ASCII case-insensitive), or nullptr.
  const std::string* find_header(std::string_view name) const;
  // Empty, ready for the next request; small buffers keep their capacity, large ones are released.
  void clear();
};

// A request the parser rejected: the status to answer with and a message for the client.
struct ParseError {
  int status = 0;
  std::string message;
};

enum class ParseStatus {
  need_more,      // all bytes consumed, the request is incomplete
  head_complete,  // the head is parsed: the caller may answer "100 Continue"; call feed() again
  request_ready,  // a whole request is in request(); later bytes were not consumed
  error,          // see error(); the connection must be closed after answering
};

// Incremental request parser. It stops after each complete request so that pipelined requests are
// answered in order: the caller handles request(), calls next(), then feeds the unconsumed bytes.
class Parser {
 public:
  explicit Parser(const Limits& limits);
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses up to len bytes; *consumed says how many were used.
  ParseStatus feed(const char* data, size_t len, size_t* consumed);
  Request& request();
  const ParseError& error() const;
  void next();  // forget the finished request and get ready for the next one
  bool in_progress() const;  // some bytes of a request have arrived
  bool head_done() const;    // the request's head is parsed; its body may still be arriving

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Reason phrases. Werkzeug's upper-case phrases for responses the application makes ("404 NOT FOUND"),
// title case for the server's own transport errors ("400 Bad Request"); 200 is always "OK".
std::string_view reason_phrase(int status);
std::string_view reason_phrase_upper(int status);

// The start of every response head: the status line, Server, Date, the Connection header the client
// needs, and Content-Type and Content-Length when given. Every answer the server writes (the views',
// its own errors, the crash responder's pre-rendered one) begins here, so all are framed alike; the
// caller adds what is particular to the answer (add_header) and ends the head (end_head).
struct Head {
  enum class Connection { keep_alive, keep_alive_http10, close };  // http10: "Connection: keep-alive"
  int status = 200;
  std::string_view reason;
  Connection connection = Connection::keep_alive;
  bool date = true;  // false only where time cannot be formatted (a signal handler's pre-rendered head)
  std::string_view content_type;          // empty: none
  std::optional<size_t> content_length;   // none: the caller frames the body (chunked, or by the close)
  bool http10 = false;  // "HTTP/1.0" in the status line: the request's version, as gunicorn answers
};
void begin_head(std::string& out, const Head& head);

// Appends a response head piece by piece to `out`, a buffer the caller reuses.
void begin_response(std::string& out, int status, std::string_view reason, bool http10 = false);
void add_header(std::string& out, std::string_view name, std::string_view value);
void add_header(std::string& out, std::string_view name, size_t value);
void add_date_header(std::string& out);  // cached per second

void end_head(std::string& out);

// What a response head may carry that the server did not write itself (RFC 9110 5.1, 5.5; RFC 9112 4):
// a header name is a token; a header value or a reason phrase has no control character but HTAB
// (obs-text, bytes 0x80-0xff, is allowed). Anything else could break the head or start a new header.
bool is_token(std::string_view s);
bool is_field_text(std::string_view s);
// A field value without the blanks around it (RFC 9110 5.5: OWS is not part of the value).
std::string_view trim_ows(std::string_view s);
// Headers that frame the message or manage the connection (hop-by-hop, RFC 9110 7.6.1; RFC 9112 6, 7),
// and Server and Date: the server writes these itself for every answer, so one from an application is
// never sent. Content-Length is not among them: its value is checked against the body instead.
bool is_server_owned_header(std::string_view name);
// The statuses whose answers never have a body (RFC 9110 15.2, 15.3.5, 15.4.5; RFC 9112 6.3).
constexpr bool status_has_no_body(int status) { return status < 200 || status == 204 || status == 304; }
// {"message": "<text>"} exactly as json.dumps({"message": text}) writes it.
std::string json_message(std::string_view text);

// Request ids, docs/behaviour.md 3.3.
struct RequestIds {
  enum class Outcome { ok, request_id_too_long, client_ids_too_long };
  Outcome outcome = Outcome::ok;
  std::string request_id;  // x-request-id to send back; empty means no header
  std::string legacy_id;   // x-ms-request-id
  std::string client_id;   // x-ms-client-request-id
  bool deprecated_header_used = false;  // x-ms-request-id was sent: log the deprecation warning
};
RequestIds resolve_request_ids(const Request& request);
// A random lowercase UUID4; safe to call in forked children (reseeds after fork).
std::string new_uuid4();

// CORS for the application's responses (docs/behaviour.md 3.8), as flask-cors does it for the reference:
// origins from AML_CORS_ORIGINS, methods GET and POST, any request header allowed.
struct CorsPolicy {
  std::vector<std::string> origins;  // as configured, stripped; "*" allows any
  bool enabled() const { return !origins.empty(); }
  static CorsPolicy parse(std::string_view configured);  // "a, b" → {"a", "b"}
  // Appends the CORS headers this request gets (none when its Origin is not allowed).
  void append_headers(const Request& request, std::string& out) const;
};

// Percent-decodes a path for routing ("/sc%6Fre" is "/score") and merges repeated slashes as Werkzeug does.
std::string normalize_path(std::string_view raw_path);

// The first value of `name` in a query string, percent-decoded with '+' as space; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

bool iequals(std::string_view a, std::string_view b);

}  // namespace http
