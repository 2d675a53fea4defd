#include "log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <fmt/format.h>

namespace logline {

void append_prefix(std::string& out, Level level, std::string_view logger) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char stamp[32];
  size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  fmt::format_to(std::back_inserter(out), "{},{:03d} {} [{}] {} - ", std::string_view(stamp, n),
                 static_cast<int>(tv.tv_usec / 1000), static_cast<char>(level), getpid(), logger);
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

void write(Stream stream, Level level, std::string_view logger, std::string_view message) {
  thread_local std::string line;
  line.clear();
  append_prefix(line, level, logger);
  line.append(message);
  line.push_back('\n');
  write_raw(stream, line);
}

}  // namespace logline
