// Request metrics in the shared supervision table, and their Prometheus rendering (docs/architecture.md
// "Metrics and readiness"). Each slot's metrics have one writer, the I/O thread of the worker that holds
// the slot; any worker's I/O thread reads every slot when it answers GET /metrics. Fixed-size atomics
// only: no locks and no pointers, since the table is one MAP_SHARED mapping seen by many processes.
#pragma once

#include <atomic>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <vector>

namespace worker {

struct Table;

// Routes as the metrics name them; "other" is every unrouted path, and requests refused before their
// path was known.
enum class MetricRoute : uint8_t { health = 0, score, swagger, other };
constexpr int kMetricRoutes = 4;

// Upper bounds of the duration histograms' buckets, from half a millisecond (a health check) to five
// minutes (a slow run()); one more bucket, +Inf, follows.
struct Bucket {
  uint64_t le_ns;
  const char* le;  // as written in the exposition, so no float formatting decides the label
};
constexpr Bucket kDurationBuckets[] = {
    {500'000, "0.0005"},         {1'000'000, "0.001"},       {2'500'000, "0.0025"},
    {5'000'000, "0.005"},        {10'000'000, "0.01"},       {25'000'000, "0.025"},
    {50'000'000, "0.05"},        {100'000'000, "0.1"},       {250'000'000, "0.25"},
    {500'000'000, "0.5"},        {1'000'000'000, "1"},       {2'500'000'000, "2.5"},
    {5'000'000'000, "5"},        {10'000'000'000, "10"},     {30'000'000'000, "30"},
    {60'000'000'000, "60"},      {300'000'000'000, "300"},
};
constexpr int kBucketCount = static_cast<int>(std::size(kDurationBuckets)) + 1;  // + the +Inf bucket

// Per bucket, not cumulative: an observation is one add. The reader accumulates, and takes _count from
// the same reads, so +Inf always equals _count in what it renders.
struct Histogram {
  std::atomic<uint64_t> buckets[kBucketCount];
  std::atomic<uint64_t> sum_ns;
};

// One (route, status) pair's count. `key` is written once, before the entry is published.
struct StatusCount {
  std::atomic<uint32_t> key;  // route * 1000 + status
  std::atomic<uint64_t> count;
};

constexpr int kStatusEntries = 32;

// Never reset: a worker that takes a slot goes on counting where the previous one stopped, so the sums
// over slots are monotonic across worker restarts (Prometheus reads a drop as a counter reset).
struct SlotMetrics {
  // Entries [0, statuses_used) are valid; the writer appends and then publishes with a release store.
  std::atomic<uint32_t> statuses_used;
  StatusCount statuses[kStatusEntries];
  // Answers whose (route, status) found no free entry, or a status outside 100..999: status="other".
  std::atomic<uint64_t> statuses_overflow[kMetricRoutes];
  Histogram request_duration[kMetricRoutes];
  Histogram run_duration;
  // A gauge, not a counter: the worker sets it to 0 when it starts, and readers skip empty slots.
  std::atomic<uint32_t> in_flight;
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "the shared table needs lock-free atomics: a lock in shared memory could be left held by a dead "
              "worker");

// ---- the writer: one worker's I/O thread ----------------------------------------------------------------

constexpr int kMaxStatusCode = 999;

struct MetricsWriter {
  SlotMetrics* slot = nullptr;
  // Where each (route, status) lives in slot->statuses, -1: not yet there. Built from the entries the
  // slot already has, so a replacement worker goes on with its predecessor's entries.
  int8_t entry[kMetricRoutes][kMaxStatusCode + 1];
};

void attach_metrics(MetricsWriter& writer, SlotMetrics& slot);
// One answer on the scoring or health listeners.
void count_answer(MetricsWriter& writer, MetricRoute route, int status);
// From a request's complete arrival to its answer (the head, for a streamed one).
void observe_request_duration(MetricsWriter& writer, MetricRoute route, uint64_t ns);
// Time the Python thread spent on one score request: arguments, run(), converting its result.
void observe_run_duration(MetricsWriter& writer, uint64_t ns);
void set_in_flight(MetricsWriter& writer, uint32_t requests);

// ---- the reader: GET /metrics -----------------------------------------------------------------------------

struct BuildInfo {
  std::string version;  // azmlinfsrv's
  std::string python;   // the embedded interpreter's, "3.11.2"
};

struct WorkerMemory {
  int32_t pid;
  uint64_t rss_bytes;
};

// Resident memory of each live worker in the table, from /proc/<pid>/statm; workers that exited
// meanwhile are left out.
std::vector<WorkerMemory> read_worker_memory(const Table& table);

// Appends the Prometheus text exposition (format 0.0.4) of the whole table: every slot's metrics summed,
// the arbiter's restart counts, `memory` and the build info. No I/O, so tests can call it directly.
void render_metrics(std::string& out, const Table& table, const BuildInfo& build, std::span<const WorkerMemory> memory);

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace worker
