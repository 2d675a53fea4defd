// base/: the few plain tools several rooms need, kept once: the monotonic clock, a per-second calendar
// stamp, signal names, and JSON string escaping as json.dumps does it. Knows nothing of the other rooms
// (no HTTP, no Python, no libuv); everything here is a plain function or a small struct.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace base {

// CLOCK_MONOTONIC in nanoseconds: deadlines, durations, heartbeats (the same clock in every process,
// so the arbiter can compare a worker's times with its own).
uint64_t monotonic_ns();

// The calendar text of one UTC second through strftime(format), formatted again only when the second
// changes: request lines, access lines and Date headers are stamped per request, and gmtime_r + strftime
// each time would cost more than the rest of a line. One per thread and format.
class SecondStamp {
 public:
  explicit SecondStamp(const char* format) : format_(format) {}
  std::string_view at(time_t second);
  std::string_view now() { return at(time(nullptr)); }

 private:
  const char* format_;
  time_t second_ = -1;
  char text_[64] = {};
  size_t length_ = 0;
};

// "SIGSEGV" for the signals the server names in its messages; nullptr for others.
const char* signal_name(int signum);

// JSON string bodies as Python's json.dumps writes them. ensure_ascii: json.dumps's default (every
// character outside ' '..'~' escaped, \uXXXX in lower-case hex, surrogate pairs above U+FFFF); keep_utf8:
// ensure_ascii=False (only '"', '\\' and control characters escaped; UTF-8 passes as it is).
enum class JsonText { ensure_ascii, keep_utf8 };

// A character json.dumps(ensure_ascii=True) writes as it is.
inline bool json_plain_ascii(uint32_t c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; }

// The escape json.dumps writes for one character that is not plain: the short forms (\" \\ \n \r \t \b
// \f), else \uXXXX, as a surrogate pair above U+FFFF. Callers that walk their own strings (Python's
// str in the result encoder) use it directly.
void append_json_escape(std::string& out, uint32_t code_point);

// Appends the body of a JSON string (no quotes) for UTF-8 text; invalid UTF-8 bytes become U+FFFD
// (ensure_ascii) or pass as they are (keep_utf8).
void append_json_string(std::string& out, std::string_view utf8, JsonText mode);

}  // namespace base
