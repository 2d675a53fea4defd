// worker/capture.h: the file --capture writes and --replay reads. Round trips, base64, the errors a
// hand-edited capture gets, the names (they sort by time), and pruning to the last 100.
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "../../worker/capture.h"

using worker::base64_decode;
using worker::base64_encode;
using worker::capture_file_name;
using worker::capture_json;
using worker::CapturedRequest;
using worker::read_replay_input;

namespace {

CapturedRequest sample() {
  CapturedRequest r;
  r.time = "2026-12-03T16:45:12.123Z";
  r.request_id = "abc-123";
  r.failure = "exception";
  r.status = 500;
  r.method = "POST";
  r.path = "/score";
  r.query = "a=1&b=%20";
  r.headers = {{"Content-Type", "application/json"}, {"X-Quote", "say \"hi\"\\"}, {"X-Utf8", "caf\xc3\xa9"}};
  r.body = "{\"values\": [1, 2]}\n";
  r.traceback = "Traceback (most recent call last):\n  File \"score.py\", line 3\nZeroDivisionError";
  return r;
}

}  // namespace

TEST_CASE("a capture reads back as it was written") {
  CapturedRequest r = sample();
  worker::ReplayInput in = read_replay_input(capture_json(r));
  REQUIRE(in.is_capture);
  REQUIRE(in.error.empty());
  CHECK(in.request.time == r.time);
  CHECK(in.request.request_id == r.request_id);
  CHECK(in.request.failure == r.failure);
  CHECK(in.request.method == r.method);
  CHECK(in.request.path == r.path);
  CHECK(in.request.query == r.query);
  CHECK(in.request.headers == r.headers);
  CHECK(in.request.body == r.body);
  CHECK(in.request.traceback == r.traceback);
  CHECK(capture_json(r).find("\"body\": ") != std::string::npos);
}

TEST_CASE("a body that is not UTF-8 is written in base64 and reads back byte for byte") {
  CapturedRequest r = sample();
  r.body = std::string("\x00\xff\xfe binary \xc3", 13);
  std::string text = capture_json(r);
  CHECK(text.find("\"body_base64\": ") != std::string::npos);
  CHECK(text.find("\"body\": ") == std::string::npos);
  worker::ReplayInput in = read_replay_input(text);
  REQUIRE(in.error.empty());
  CHECK(in.request.body == r.body);
}

TEST_CASE("surrogates and overlong forms are not UTF-8: base64") {
  for (std::string body : {std::string("\xed\xa0\x80"), std::string("\xc0\xaf"), std::string("\xf4\x90\x80\x80")}) {
    CapturedRequest r = sample();
    r.body = body;
    CHECK(capture_json(r).find("\"body_base64\"") != std::string::npos);
    CHECK(read_replay_input(capture_json(r)).request.body == body);
  }
}

TEST_CASE("base64 round trips every length and refuses what is not base64") {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    CHECK(base64_decode(base64_encode(bytes)) == bytes);
    bytes += static_cast<char>(i * 37);
  }
  CHECK(base64_encode("Man") == "TWFu");
  CHECK(base64_encode("Ma") == "TWE=");
  CHECK(base64_encode("M") == "TQ==");
  CHECK(!base64_decode("TW!u"));
  CHECK(!base64_decode("TQ==TQ"));
}

TEST_CASE("anything that is not a capture is a plain body for POST /score") {
  for (std::string text : {std::string("{\"values\": [1]}"), std::string("[1, 2]"), std::string("not json"),
                           std::string("{\"format\": \"something else\"}")}) {
    worker::ReplayInput in = read_replay_input(text);
    CHECK(!in.is_capture);
    CHECK(in.error.empty());
    CHECK(in.request.method == "POST");
    CHECK(in.request.path == "/score");
    CHECK(in.request.body == text);
    REQUIRE(in.request.headers.size() == 1);
    CHECK(in.request.headers[0].second == "application/json");
  }
}

TEST_CASE("a capture with a wrong field says which and what it must be") {
  std::string head = "{\"format\": \"azmlinfsrv-capture/1\", ";
  CHECK(read_replay_input(head + "\"path\": \"/score\"}").error == "the field \"method\" is missing");
  CHECK(read_replay_input(head + "\"method\": 1, \"path\": \"/score\"}").error == "the field \"method\" must be a string");
  CHECK(read_replay_input(head + "\"method\": \"POST\", \"path\": \"score\"}").error.find("must start with '/'") !=
        std::string::npos);
  CHECK(read_replay_input(head + "\"method\": \"POST\", \"path\": \"/score\", \"headers\": [[\"a\"]]}").error ==
        "the field \"headers\" must be a list of [name, value] pairs of strings");
  CHECK(read_replay_input(head + "\"method\": \"POST\", \"path\": \"/score\", \"body_base64\": \"@@\"}").error ==
        "the field \"body_base64\" must be a base64 string");
  CHECK(read_replay_input(head + "\"method\": \"POST\", \"path\": \"/score\", \"body\": \"\", \"body_base64\": \"\"}")
            .error.find("both") != std::string::npos);
}

TEST_CASE("capture names sort by time and keep only safe characters of the id") {
  CHECK(capture_file_name("2026-12-03T16:45:12.123Z", "abc-123") == "20261203T164512.123Z-abc-123.json");
  CHECK(capture_file_name("2026-12-03T16:45:12.123Z", "../../etc/passwd") == "20261203T164512.123Z-etcpasswd.json");
  CHECK(capture_file_name("2026-12-03T16:45:12.123Z", "") == "20261203T164512.123Z.json");
  CHECK(capture_file_name("2026-12-03T09:00:00.000Z", "z") < capture_file_name("2026-12-03T10:00:00.000Z", "a"));
}

TEST_CASE("a folder keeps the last 100 captures, latest.json the newest") {
  char dir_template[] = "/tmp/capture-test-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  CapturedRequest r = sample();
  // Each save logs a line naming the file: not into the test's output.
  int saved_stdout = dup(STDOUT_FILENO);
  int null = open("/dev/null", O_WRONLY);
  dup2(null, STDOUT_FILENO);
  for (int i = 0; i < 105; ++i) {
    r.time = "2026-12-03T16:45:12." + std::string(i < 10 ? "00" : i < 100 ? "0" : "") + std::to_string(i) + "Z";
    r.request_id = "id" + std::to_string(i);
    worker::save_capture(dir, r);
  }
  dup2(saved_stdout, STDOUT_FILENO);
  close(saved_stdout);
  close(null);
  int files = 0;
  std::string oldest = "~";
  DIR* d = opendir(dir.c_str());
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".json" && name != "latest.json") {
      ++files;
      oldest = std::min(oldest, name);
    }
  }
  closedir(d);
  CHECK(files == 100);
  CHECK(oldest == "20261203T164512.005Z-id5.json");
  char target[256] = {};
  REQUIRE(readlink((dir + "/latest.json").c_str(), target, sizeof target - 1) > 0);
  CHECK(std::string(target) == "20261203T164512.104Z-id104.json");
  std::ifstream latest(dir + "/latest.json");
  std::string text((std::istreambuf_iterator<char>(latest)), std::istreambuf_iterator<char>());
  CHECK(read_replay_input(text).request.request_id == "id104");
  std::string cleanup = "rm -rf " + dir;
  CHECK(system(cleanup.c_str()) == 0);
}

TEST_CASE("the capture reader takes JSON's escapes and refuses what is not one JSON object") {
  std::string head = "{\"format\": \"azmlinfsrv-capture/1\", \"method\": \"POST\", \"path\": \"/score\", ";
  worker::ReplayInput in = read_replay_input(head + "\"body\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n\\t\"}");
  REQUIRE(in.error.empty());
  CHECK(in.request.body == "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \n\t");
  // Python's json.loads keeps the last of duplicate keys; so does the reader.
  CHECK(read_replay_input(head + "\"body\": \"a\", \"body\": \"b\"}").request.body == "b");
  CHECK(read_replay_input(head + "\"status\": -1.5e+3, \"x\": [true, false, null, {}], \"body\": \"\"}").error.empty());
  // Not one JSON object (trailing text, a raw control character, too deep): a plain body, as sent.
  for (std::string text : {head + "\"body\": \"\"} extra", head + "\"body\": \"a\nb\"}",
                           std::string(100, '[') + std::string(100, ']'), std::string("{\"format\": ")}) {
    worker::ReplayInput plain = read_replay_input(text);
    CHECK(!plain.is_capture);
    CHECK(plain.request.body == text);
  }
}
