// log/: the contract's line prefix (docs/behaviour.md 6.1).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <regex>

#include "../../log/log.h"

TEST_CASE("a line prefix is UTC time with comma-milliseconds, level letter, pid, logger") {
  std::string line;
  logline::append_prefix(line, logline::Level::warning, "azmlinfsrv.print");
  std::regex shape(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} W \[(\d+)\] azmlinfsrv\.print - $)");
  std::smatch m;
  REQUIRE(std::regex_match(line, m, shape));
  CHECK(std::stol(m[1]) == getpid());
  // UTC whatever the zone: the hour matches gmtime's.
  time_t now = time(nullptr);
  struct tm utc;
  gmtime_r(&now, &utc);
  char hour[4];
  strftime(hour, sizeof hour, "%H", &utc);
  CHECK(line.substr(11, 2) == hour);
}
