// CORS headers with flask-cors's rules, so a browser sees what it would see in front of the reference.
#include <algorithm>
#include <optional>
#include <regex>

#include "http.h"

namespace http {

namespace {

constexpr const char* kCorsMethods = "GET, POST";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// flask-cors treats an origin holding regex characters as a pattern.
bool probably_regex(std::string_view origin) {
  return origin.find_first_of("*\\]?$^[()") != std::string_view::npos;
}

bool origin_matches(std::string_view request_origin, const std::string& allowed) {
  if (allowed == "*") return true;
  if (probably_regex(allowed)) {
    try {
      // re.match: anchored at the start only.
      std::regex pattern(allowed, std::regex::ECMAScript | std::regex::icase);
      return std::regex_search(request_origin.begin(), request_origin.end(), pattern,
                               std::regex_constants::match_continuous);
    } catch (const std::regex_error&) {
      return false;
    }
  }
  return iequals(request_origin, allowed);
}

}  // namespace

CorsPolicy CorsPolicy::parse(std::string_view configured) {
  CorsPolicy policy;
  while (!configured.empty()) {
    size_t comma = configured.find(',');
    std::string_view origin = trim(configured.substr(0, comma));
    if (!origin.empty()) policy.origins.emplace_back(origin);
    configured = comma == std::string_view::npos ? std::string_view{} : configured.substr(comma + 1);
  }
  return policy;
}

namespace {

// A request header as the reference's WSGI environ holds it: gunicorn joins repeated lines with ",".
std::optional<std::string> joined_header(const Request& request, std::string_view name) {
  std::optional<std::string> value;
  for (const Header& h : request.headers) {
    if (!iequals(h.name, name)) continue;
    if (value) *value += ',';
    else value.emplace();
    *value += h.value;
  }
  return value;
}

// What Python's str.strip() removes from a header value decoded as latin-1, as the reference's is.
bool python_space(unsigned char ch) {
  return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f) || ch == 0x85 || ch == 0xa0;
}

std::string_view python_strip(std::string_view s) {
  while (!s.empty() && python_space(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && python_space(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// flask-cors's get_allow_headers with allow_headers="*" (every name matches): the requested names split on
// ",", each stripped, sorted as Python sorts str (by code point: latin-1 bytes, unsigned), joined by ", ".
// Neither lower-cased nor de-duplicated; empty names stay.
std::string allow_headers(std::string_view requested) {
  std::vector<std::string_view> names;
  for (;;) {
    size_t comma = requested.find(',');
    names.push_back(python_strip(requested.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    requested.remove_prefix(comma + 1);
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

// flask-cors tests the upper-cased Access-Control-Request-Method with `in` against its methods option, the
// string "GET, POST": a substring test ("GET", "POST", "T, P" pass; "DELETE" and "" do not).
bool preflight_method_allowed(std::string method) {
  if (method.empty()) return false;
  for (char& ch : method)
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  return std::string_view(kCorsMethods).find(method) != std::string_view::npos;
}

}  // namespace

void CorsPolicy::append_headers(const Request& request, std::string& out) const {
  if (!enabled()) return;
  bool wildcard = std::find(origins.begin(), origins.end(), "*") != origins.end();
  std::optional<std::string> origin = joined_header(request, "origin");
  std::string allow;
  if (origin && !origin->empty()) {
    for (const std::string& allowed : origins) {
      if (origin_matches(*origin, allowed)) {
        allow = *origin;
        break;
      }
    }
    if (allow.empty()) return;  // not an allowed origin: no CORS headers at all
  } else if (wildcard) {
    allow = "*";
  } else {
    // No Origin: flask-cors names the first plain origin in sorted order.
    std::vector<std::string> plain;
    for (const std::string& o : origins)
      if (!probably_regex(o)) plain.push_back(o);
    if (plain.empty()) return;
    allow = *std::min_element(plain.begin(), plain.end());
  }
  add_header(out, "Access-Control-Allow-Origin", allow);
  if (request.method == "OPTIONS") {
    std::optional<std::string> method = joined_header(request, "access-control-request-method");
    if (method && preflight_method_allowed(*method)) {
      std::optional<std::string> asked = joined_header(request, "access-control-request-headers");
      if (asked && !asked->empty()) add_header(out, "Access-Control-Allow-Headers", allow_headers(*asked));
      add_header(out, "Access-Control-Allow-Methods", kCorsMethods);
    }
  }
  // Vary only when the answer depends on the Origin: more than one origin, or a pattern ("*" is one).
  bool varies = origins.size() > 1 || std::any_of(origins.begin(), origins.end(),
                                                  [](const std::string& o) { return probably_regex(o); });
  if (allow != "*" && varies) add_header(out, "Vary", "Origin");
}

}  // namespace http
