// worker/metrics: counting into slots of a table and the Prometheus text rendering, without sockets.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include <unistd.h>

#include "../../worker/worker.h"

namespace {

using worker::MetricRoute;

std::unique_ptr<worker::Table> new_table() {
  auto table = std::make_unique<worker::Table>();  // value-initialised: zero, as the fresh mapping is
  return table;
}

std::string render(const worker::Table& table, std::vector<worker::WorkerMemory> memory = {},
                   worker::BuildInfo build = {"1.5.1", "3.11.2"}) {
  std::string out;
  worker::render_metrics(out, table, build, memory);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// sample line -> value, keyed by the line up to the value ("name{labels}").
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> values;
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    values[line.substr(0, space)] = line.substr(space + 1);
  }
  return values;
}

// Text format 0.0.4: HELP and TYPE lines, then samples of that family only.
void require_valid_exposition(const std::string& text) {
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  std::regex sample(
      R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? (\+Inf|-?[0-9.e+-]+)$)re");
  std::string family, family_type;
  std::map<std::string, int> seen_type;
  for (const std::string& line : lines_of(text)) {
    std::smatch m;
    INFO(line);
    if (std::regex_match(line, m, help)) {
      family = m[1];
      continue;
    }
    if (std::regex_match(line, m, type)) {
      REQUIRE(m[1] == family);
      REQUIRE(++seen_type[family] == 1);
      family_type = m[2];
      continue;
    }
    REQUIRE(std::regex_match(line, m, sample));
    std::string name = m[1];
    if (family_type == "histogram")
      REQUIRE((name == family + "_bucket" || name == family + "_sum" || name == family + "_count"));
    else
      REQUIRE(name == family);
  }
}

}  // namespace

TEST_CASE("an empty table renders every family with HELP and TYPE, and zero restarts") {
  auto table = new_table();
  std::string text = render(*table);
  require_valid_exposition(text);
  auto values = samples(text);
  CHECK(values["azmlinfsrv_build_info{version=\"1.5.1\",python=\"3.11.2\"}"] == "1");
  for (const char* cause : {"crash", "timeout", "max_requests", "reload"})
    CHECK(values[std::string("azmlinfsrv_worker_restarts_total{cause=\"") + cause + "\"}"] == "0");
  CHECK(values["azmlinfsrv_requests_in_flight"] == "0");
  CHECK(values["azmlinfsrv_run_duration_seconds_count"] == "0");
  CHECK(values["azmlinfsrv_run_duration_seconds_bucket{le=\"+Inf\"}"] == "0");
  CHECK(text.find("# TYPE azmlinfsrv_requests_total counter\n") != std::string::npos);
  CHECK(text.find("azmlinfsrv_requests_total{") == std::string::npos);  // no samples before the first answer
}

TEST_CASE("answers are summed over slots per (route, status)") {
  auto table = new_table();
  worker::MetricsWriter a, b;
  worker::attach_metrics(a, table->slots[0].metrics);
  worker::attach_metrics(b, table->slots[3].metrics);
  for (int i = 0; i < 5; ++i) worker::count_answer(a, MetricRoute::score, 200);
  for (int i = 0; i < 2; ++i) worker::count_answer(b, MetricRoute::score, 200);
  worker::count_answer(b, MetricRoute::other, 404);
  worker::count_answer(a, MetricRoute::health, 200);
  worker::count_answer(a, MetricRoute::score, 500);
  std::string text = render(*table);
  require_valid_exposition(text);
  auto values = samples(text);
  CHECK(values["azmlinfsrv_requests_total{route=\"score\",status=\"200\"}"] == "7");
  CHECK(values["azmlinfsrv_requests_total{route=\"score\",status=\"500\"}"] == "1");
  CHECK(values["azmlinfsrv_requests_total{route=\"health\",status=\"200\"}"] == "1");
  CHECK(values["azmlinfsrv_requests_total{route=\"other\",status=\"404\"}"] == "1");
}

TEST_CASE("a new worker in a slot continues its predecessor's counters") {
  auto table = new_table();
  worker::MetricsWriter first;
  worker::attach_metrics(first, table->slots[1].metrics);
  worker::count_answer(first, MetricRoute::score, 200);
  worker::count_answer(first, MetricRoute::score, 503);
  worker::observe_run_duration(first, 2'000'000);
  worker::set_in_flight(first, 3);

  worker::MetricsWriter second;  // the replacement: a fresh writer on the same slot
  worker::attach_metrics(second, table->slots[1].metrics);
  worker::count_answer(second, MetricRoute::score, 200);
  CHECK(table->slots[1].metrics.statuses_used.load() == 2);  // the existing entry, not a new one
  table->slots[1].state.store(worker::SlotState::ready);
  auto values = samples(render(*table));
  CHECK(values["azmlinfsrv_requests_total{route=\"score\",status=\"200\"}"] == "2");
  CHECK(values["azmlinfsrv_requests_total{route=\"score\",status=\"503\"}"] == "1");
  CHECK(values["azmlinfsrv_run_duration_seconds_count"] == "1");
  CHECK(values["azmlinfsrv_requests_in_flight"] == "0");  // a gauge starts over
}

TEST_CASE("histogram buckets are cumulative and +Inf equals _count") {
  auto table = new_table();
  worker::MetricsWriter w;
  worker::attach_metrics(w, table->slots[0].metrics);
  worker::observe_request_duration(w, MetricRoute::score, 100'000);            // 0.0001 s
  worker::observe_request_duration(w, MetricRoute::score, 500'000);            // exactly 0.0005: le is inclusive
  worker::observe_request_duration(w, MetricRoute::score, 30'000'000);         // 0.03
  worker::observe_request_duration(w, MetricRoute::score, 1'000'000'000'000);  // 1000 s: only +Inf
  std::string text = render(*table);
  require_valid_exposition(text);
  auto values = samples(text);
  std::string prefix = "azmlinfsrv_request_duration_seconds_bucket{route=\"score\",le=\"";
  CHECK(values[prefix + "0.0005\"}"] == "2");
  CHECK(values[prefix + "0.025\"}"] == "2");
  CHECK(values[prefix + "0.05\"}"] == "3");
  CHECK(values[prefix + "300\"}"] == "3");
  CHECK(values[prefix + "+Inf\"}"] == "4");
  CHECK(values["azmlinfsrv_request_duration_seconds_count{route=\"score\"}"] == "4");
  CHECK(std::stod(values["azmlinfsrv_request_duration_seconds_sum{route=\"score\"}"]) == Approx(1000.0306));
  CHECK(values["azmlinfsrv_request_duration_seconds_count{route=\"health\"}"] == "0");

  // Every bucket line of every family is non-decreasing and ends with +Inf.
  std::regex bucket(R"re(^(\w+)_bucket\{(.*)le="([^"]+)"\} (\d+)$)re");
  std::string series;
  uint64_t last = 0;
  std::string last_le;
  for (const std::string& line : lines_of(text)) {
    std::smatch m;
    if (!std::regex_match(line, m, bucket)) {
      if (!series.empty() && line.find("_sum") != std::string::npos) CHECK(last_le == "+Inf");
      series.clear();
      continue;
    }
    std::string this_series = std::string(m[1]) + std::string(m[2]);
    uint64_t value = std::stoull(m[4]);
    if (this_series == series) CHECK(value >= last);
    series = this_series;
    last = value;
    last_le = m[3];
  }
}

TEST_CASE("more than 32 (route, status) pairs in a slot go to status=\"other\"") {
  auto table = new_table();
  worker::MetricsWriter w;
  worker::attach_metrics(w, table->slots[0].metrics);
  for (int status = 200; status < 200 + worker::kStatusEntries; ++status) worker::count_answer(w, MetricRoute::score, status);
  worker::count_answer(w, MetricRoute::score, 299);
  worker::count_answer(w, MetricRoute::score, 299);
  worker::count_answer(w, MetricRoute::health, 1000);  // outside 100..999
  worker::count_answer(w, MetricRoute::score, 200);    // an existing pair still counts in its own entry
  std::string text = render(*table);
  require_valid_exposition(text);
  auto values = samples(text);
  CHECK(values["azmlinfsrv_requests_total{route=\"score\",status=\"200\"}"] == "2");
  CHECK(values["azmlinfsrv_requests_total{route=\"score\",status=\"231\"}"] == "1");
  CHECK(values["azmlinfsrv_requests_total{route=\"score\",status=\"other\"}"] == "2");
  CHECK(values["azmlinfsrv_requests_total{route=\"health\",status=\"other\"}"] == "1");
}

TEST_CASE("in-flight counts live slots only; restarts, memory and build info are rendered") {
  auto table = new_table();
  worker::MetricsWriter live, dead;
  worker::attach_metrics(live, table->slots[0].metrics);
  worker::attach_metrics(dead, table->slots[1].metrics);
  table->slots[0].state.store(worker::SlotState::ready);
  worker::set_in_flight(live, 2);
  worker::set_in_flight(dead, 5);  // a slot whose worker died with requests out: state empty
  table->restarts[static_cast<int>(worker::RestartCause::crash)].store(3);
  table->restarts[static_cast<int>(worker::RestartCause::reload)].store(2);
  std::string text = render(*table, {{101, 4096}, {102, 8192}}, {"1.5.1", "3.11\"x\\y\nz"});
  require_valid_exposition(text);
  auto values = samples(text);
  CHECK(values["azmlinfsrv_requests_in_flight"] == "2");
  CHECK(values["azmlinfsrv_worker_restarts_total{cause=\"crash\"}"] == "3");
  CHECK(values["azmlinfsrv_worker_restarts_total{cause=\"reload\"}"] == "2");
  CHECK(values["azmlinfsrv_worker_restarts_total{cause=\"timeout\"}"] == "0");
  CHECK(values["azmlinfsrv_worker_resident_memory_bytes{pid=\"101\"}"] == "4096");
  CHECK(values["azmlinfsrv_worker_resident_memory_bytes{pid=\"102\"}"] == "8192");
  CHECK(values["azmlinfsrv_build_info{version=\"1.5.1\",python=\"3.11\\\"x\\\\y\\nz\"}"] == "1");
}

TEST_CASE("worker memory is read from /proc for live slots") {
  auto table = new_table();
  table->slots[2].state.store(worker::SlotState::ready);
  table->slots[2].pid.store(getpid());
  table->slots[3].pid.store(getpid());  // empty slot: skipped
  auto memory = worker::read_worker_memory(*table);
  REQUIRE(memory.size() == 1);
  CHECK(memory[0].pid == getpid());
  CHECK(memory[0].rss_bytes > 1024 * 1024);
}
