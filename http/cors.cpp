// CORS headers with flask-cors's rules, so a browser sees what it would see in front of the reference.
#include <algorithm>
#include <regex>

#include "http.h"

namespace http {

namespace {

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

void CorsPolicy::append_headers(const Request& request, std::string& out) const {
  if (!enabled()) return;
  bool wildcard = std::find(origins.begin(), origins.end(), "*") != origins.end();
  const std::string* origin = request.find_header("origin");
  std::string allow;
  if (origin) {
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
  if (request.method == "OPTIONS" && request.find_header("access-control-request-method")) {
    if (const std::string* asked = request.find_header("access-control-request-headers"))
      add_header(out, "Access-Control-Allow-Headers", *asked);
    add_header(out, "Access-Control-Allow-Methods", "GET, POST");
  }
  if (allow != "*") add_header(out, "Vary", "Origin");
}

}  // namespace http
