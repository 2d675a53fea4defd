// base/: see base.h.
#include "base.h"

#include <signal.h>

namespace base {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_u_escape(std::string& out, uint32_t c) {
  char buf[6] = {'\\', 'u', kHex[(c >> 12) & 0xF], kHex[(c >> 8) & 0xF], kHex[(c >> 4) & 0xF], kHex[c & 0xF]};
  out.append(buf, 6);
}

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i. Invalid bytes give U+FFFD.
uint32_t next_code_point(std::string_view s, size_t& i) {
  auto c = static_cast<unsigned char>(s[i]);
  int extra = (c >= 0xC2 && c < 0xE0) ? 1 : (c >= 0xE0 && c < 0xF0) ? 2 : (c >= 0xF0 && c < 0xF5) ? 3 : -1;
  if (extra < 0 || i + static_cast<size_t>(extra) >= s.size()) {
    ++i;
    return 0xFFFD;
  }
  uint32_t cp = c & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += extra + 1;
  return cp;
}

}  // namespace

uint64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string_view SecondStamp::at(time_t second) {
  if (second != second_) {
    struct tm tm;
    gmtime_r(&second, &tm);
    length_ = strftime(text_, sizeof text_, format_, &tm);
    second_ = second;
  }
  return {text_, length_};
}

const char* signal_name(int signum) {
  switch (signum) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return nullptr;
  }
}

void append_json_escape(std::string& out, uint32_t c) {
  switch (c) {
    case '"': out.append("\\\""); break;
    case '\\': out.append("\\\\"); break;
    case '\n': out.append("\\n"); break;
    case '\r': out.append("\\r"); break;
    case '\t': out.append("\\t"); break;
    case '\b': out.append("\\b"); break;
    case '\f': out.append("\\f"); break;
    default:
      if (c >= 0x10000) {
        uint32_t v = c - 0x10000;
        append_u_escape(out, 0xD800 | ((v >> 10) & 0x3FF));
        append_u_escape(out, 0xDC00 | (v & 0x3FF));
      } else {
        append_u_escape(out, c);
      }
  }
}

void append_json_string(std::string& out, std::string_view s, JsonText mode) {
  size_t start = 0;  // runs of characters written as they are are copied whole
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (json_plain_ascii(c) || (mode == JsonText::keep_utf8 && c >= 0x7f)) {
      ++i;
      continue;
    }
    out.append(s.data() + start, i - start);
    append_json_escape(out, c < 0x80 ? (++i, c) : next_code_point(s, i));
    start = i;
  }
  out.append(s.data() + start, s.size() - start);
}

}  // namespace base
