// base/: the clock, the per-second stamp, signal names, json.dumps's string escaping.
#include <signal.h>

#include <ctime>

#include <catch2/catch.hpp>

#include "../../base/base.h"

TEST_CASE("the monotonic clock never goes back and counts nanoseconds") {
  uint64_t a = base::monotonic_ns();
  struct timespec pause {0, 2'000'000};
  nanosleep(&pause, nullptr);
  uint64_t b = base::monotonic_ns();
  CHECK(b >= a + 2'000'000);
  CHECK(b - a < 2'000'000'000ull);
}

TEST_CASE("a SecondStamp is strftime of the current UTC second, in its own format") {
  base::SecondStamp stamp("%Y-%m-%d %H:%M:%S UTC");
  for (;;) {
    time_t before = time(nullptr);
    std::string first(stamp.now());
    std::string again(stamp.now());
    time_t after = time(nullptr);
    if (before != after) continue;  // a second boundary in between: both may differ, measure again
    char expected[64];
    struct tm tm;
    gmtime_r(&before, &tm);
    strftime(expected, sizeof expected, "%Y-%m-%d %H:%M:%S UTC", &tm);
    CHECK(first == expected);
    CHECK(again == first);
    break;
  }
  // Two stamps with other formats do not share their text.
  base::SecondStamp year("%Y");
  CHECK(year.now().size() == 4);
  CHECK(stamp.now().size() == std::string("2026-11-25 23:17:17 UTC").size());
}

TEST_CASE("a SecondStamp formats the second it is given, and formats again only for another one") {
  base::SecondStamp stamp("%Y-%m-%d %H:%M:%S");
  CHECK(stamp.at(0) == "1970-01-01 00:00:00");
  CHECK(stamp.at(1764700000) == "2025-12-02 18:26:40");
  CHECK(stamp.at(1764700000) == "2025-12-02 18:26:40");
  base::SecondStamp date("Date: %a, %d %b %Y %H:%M:%S GMT");
  CHECK(date.at(1764700000) == "Date: Tue, 02 Dec 2025 18:26:40 GMT");
}

TEST_CASE("signal names for the signals the server names") {
  CHECK(std::string(base::signal_name(SIGSEGV)) == "SIGSEGV");
  CHECK(std::string(base::signal_name(SIGKILL)) == "SIGKILL");
  CHECK(std::string(base::signal_name(SIGABRT)) == "SIGABRT");
  CHECK(base::signal_name(SIGWINCH) == nullptr);
}

static std::string escaped(std::string_view s, base::JsonText mode) {
  std::string out;
  base::append_json_string(out, s, mode);
  return out;
}

TEST_CASE("ensure_ascii escaping is json.dumps's default") {
  using base::JsonText;
  CHECK(escaped("plain text ~", JsonText::ensure_ascii) == "plain text ~");
  CHECK(escaped("a\"b\\c", JsonText::ensure_ascii) == "a\\\"b\\\\c");
  CHECK(escaped("\n\r\t\b\f", JsonText::ensure_ascii) == "\\n\\r\\t\\b\\f");
  CHECK(escaped(std::string_view("\x00\x01\x1f\x7f", 4), JsonText::ensure_ascii) == "\\u0000\\u0001\\u001f\\u007f");
  CHECK(escaped("\xc3\xa9", JsonText::ensure_ascii) == "\\u00e9");                 // é
  CHECK(escaped("\xe2\x82\xac", JsonText::ensure_ascii) == "\\u20ac");            // €
  CHECK(escaped("\xf0\x9f\x98\x80", JsonText::ensure_ascii) == "\\ud83d\\ude00");  // a surrogate pair
  CHECK(escaped("\xff", JsonText::ensure_ascii) == "\\ufffd");                      // not UTF-8
  CHECK(escaped("\xc3", JsonText::ensure_ascii) == "\\ufffd");                      // cut short
}

TEST_CASE("keep_utf8 escaping is json.dumps(ensure_ascii=False)") {
  using base::JsonText;
  CHECK(escaped("\xc3\xa9\xf0\x9f\x98\x80", JsonText::keep_utf8) == "\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(escaped("a\"b\\c\nd\x01\x7f", JsonText::keep_utf8) == "a\\\"b\\\\c\\nd\\u0001\x7f");
}

TEST_CASE("one character's escape, as the result encoder uses it for Python's str") {
  std::string out;
  base::append_json_escape(out, 0x1F600);
  base::append_json_escape(out, 0xE9);
  base::append_json_escape(out, '"');
  CHECK(out == "\\ud83d\\ude00\\u00e9\\\"");
  CHECK(base::json_plain_ascii('a'));
  CHECK_FALSE(base::json_plain_ascii('"'));
  CHECK_FALSE(base::json_plain_ascii(0x7f));
}
