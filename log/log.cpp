#include "log.h"

#include <pthread.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "../base/base.h"

namespace logline {

namespace {

std::atomic<Format> current_format{Format::text};

// getpid() is a system call on every use (glibc caches nothing): cache it, and forget it in a child.
std::atomic<pid_t> cached_pid{0};
pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

pid_t process_id() {
  pthread_once(&atfork_once, [] { pthread_atfork(nullptr, nullptr, [] { cached_pid.store(0); }); });
  pid_t pid = cached_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = getpid();
    cached_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

struct ThreadBuffer {
  bool enabled = false;
  std::string out, err;
};
thread_local ThreadBuffer buffer;

const char* level_name(Level level) {
  switch (level) {
    case Level::debug: return "DEBUG";
    case Level::info: return "INFO";
    case Level::warning: return "WARNING";
    case Level::error: return "ERROR";
    case Level::critical: return "CRITICAL";
  }
  return "INFO";
}

// The wall clock to the millisecond, with the calendar part formatted once per second per thread: the
// I/O thread stamps every request line, and gmtime_r + strftime per line cost more than the rest of it.
struct Now {
  const char* date_time;  // "2026-11-25 19:41:50" or "2026-11-25T19:41:50" (19 characters)
  char millis[3];
};

Now now(bool iso) {
  thread_local base::SecondStamp plain("%Y-%m-%d %H:%M:%S"), iso_stamp("%Y-%m-%dT%H:%M:%S");
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  std::string_view text = (iso ? iso_stamp : plain).at(ts.tv_sec);
  int ms = static_cast<int>(ts.tv_nsec / 1000000);
  return Now{text.data(), {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                           static_cast<char>('0' + ms % 10)}};
}

void append_pid(std::string& out) {
  char digits[16];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, process_id());
  out.append(digits, end);
}

void append_json_record(std::string& out, Level level, std::string_view logger, std::string_view message,
                        std::string_view request_id) {
  Now n = now(true);
  out += "{\"time\": \"";
  out.append(n.date_time, 19);
  out += '.';
  out.append(n.millis, 3);
  out += "Z\", \"level\": \"";
  out += level_name(level);
  out += "\", \"pid\": ";
  append_pid(out);
  out += ", \"logger\": \"";
  base::append_json_string(out, logger, base::JsonText::keep_utf8);
  out += "\", \"message\": \"";
  base::append_json_string(out, message, base::JsonText::keep_utf8);
  out += "\", \"request_id\": ";
  if (request_id.empty()) {
    out += "null";
  } else {
    out += '"';
    base::append_json_string(out, request_id, base::JsonText::keep_utf8);
    out += '"';
  }
  out += "}\n";
}

}  // namespace

void set_format(Format format) { current_format.store(format); }
Format format() { return current_format.load(); }

void append_prefix(std::string& out, Level level, std::string_view logger) {
  Now n = now(false);
  out.append(n.date_time, 19);
  out += ',';
  out.append(n.millis, 3);
  out += ' ';
  out += static_cast<char>(level);
  out += " [";
  append_pid(out);
  out += "] ";
  out.append(logger);
  out += " - ";
}

void write_raw(Stream stream, std::string_view text) {
  int fd = static_cast<int>(stream);
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a broken log stream
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
}

namespace {

void append_record(std::string& out, Level level, std::string_view logger, std::string_view message,
                   std::string_view request_id) {
  if (format() == Format::json) {
    append_json_record(out, level, logger, message, request_id);
  } else {
    append_prefix(out, level, logger);
    out.append(message);
    out.push_back('\n');
  }
}

}  // namespace

void write(Stream stream, Level level, std::string_view logger, std::string_view message,
           std::string_view request_id) {
  thread_local std::string line;
  std::string& out = buffer.enabled ? (stream == Stream::out ? buffer.out : buffer.err) : line;
  if (!buffer.enabled) line.clear();
  append_record(out, level, logger, message, request_id);
  if (!buffer.enabled) write_raw(stream, line);
}

std::string render(Level level, std::string_view logger, std::string_view message, std::string_view request_id) {
  std::string line;
  append_record(line, level, logger, message, request_id);
  return line;
}

void buffer_this_thread() { buffer.enabled = true; }

void flush() {
  if (!buffer.out.empty()) write_raw(Stream::out, buffer.out);
  if (!buffer.err.empty()) write_raw(Stream::err, buffer.err);
  buffer.out.clear();
  buffer.err.clear();
}

void write_block(Stream stream, std::string_view text) {
  if (format() == Format::text) {
    write_raw(stream, text);
    return;
  }
  while (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty()) write(stream, Level::info, "azmlinfsrv", text);
}

}  // namespace logline
