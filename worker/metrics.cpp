// Counting answers into this worker's slot, and rendering every slot as a Prometheus exposition.
#include "metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>

#include <fmt/format.h>

#include "worker.h"

namespace worker {

namespace {

constexpr std::memory_order relaxed = std::memory_order_relaxed;

const char* route_name(int route) {
  switch (static_cast<MetricRoute>(route)) {
    case MetricRoute::health: return "health";
    case MetricRoute::score: return "score";
    case MetricRoute::swagger: return "swagger";
    case MetricRoute::other: return "other";
  }
  return "other";
}

// The label of each restart cause, a switch like route_name's above: one per enum, so that a value added to
// either enum is a compiler warning in its own switch (kept apart on purpose).
const char* cause_name(int cause) {
  switch (static_cast<RestartCause>(cause)) {
    case RestartCause::crash: return "crash";
    case RestartCause::timeout: return "timeout";
    case RestartCause::max_requests: return "max_requests";
    case RestartCause::reload: return "reload";
  }
  return "crash";
}

void observe(Histogram& h, uint64_t ns) {
  int i = 0;
  while (i < kBucketCount - 1 && ns > kDurationBuckets[i].le_ns) ++i;
  h.buckets[i].fetch_add(1, relaxed);
  h.sum_ns.fetch_add(ns, relaxed);
}

bool live(const Slot& slot) { return slot.state.load(relaxed) != SlotState::empty; }

// A label value as the text format wants it: backslash, double quote and line feed escaped.
void append_label_value(std::string& out, std::string_view value) {
  for (char ch : value) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
}

void append_header(std::string& out, const char* name, const char* type, const char* help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// Sums one histogram over the slots and writes its samples; `labels` goes before le (empty or `a="b",`);
// pick(slot) names the slot's histogram.
template <class Pick>
void append_histogram(std::string& out, const char* name, const std::string& labels, const Table& table, Pick pick) {
  uint64_t buckets[kBucketCount] = {};
  uint64_t sum_ns = 0;
  for (const Slot& slot : table.slots) {
    const Histogram& h = pick(slot);
    for (int i = 0; i < kBucketCount; ++i) buckets[i] += h.buckets[i].load(relaxed);
    sum_ns += h.sum_ns.load(relaxed);
  }
  uint64_t cumulative = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    cumulative += buckets[i];
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{}le=\"{}\"}} {}\n", name, labels,
                   i < kBucketCount - 1 ? kDurationBuckets[i].le : "+Inf", cumulative);
  }
  std::string braces = labels.empty() ? std::string() : "{" + labels.substr(0, labels.size() - 1) + "}";
  fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n{}_count{} {}\n", name, braces,
                 static_cast<double>(sum_ns) / 1e9, name, braces, cumulative);
}

}  // namespace

// ---- the writer ---------------------------------------------------------------------------------------------

void attach_metrics(MetricsWriter& writer, SlotMetrics& slot) {
  writer.slot = &slot;
  for (auto& route : writer.entry)
    for (int8_t& e : route) e = -1;
  uint32_t used = slot.statuses_used.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < used && i < kStatusEntries; ++i) {
    uint32_t key = slot.statuses[i].key.load(relaxed);
    uint32_t route = key / 1000, status = key % 1000;
    if (route < kMetricRoutes) writer.entry[route][status] = static_cast<int8_t>(i);
  }
  slot.in_flight.store(0, relaxed);
}

void count_answer(MetricsWriter& writer, MetricRoute route, int status) {
  SlotMetrics& m = *writer.slot;
  int r = static_cast<int>(route);
  if (status < 100 || status > kMaxStatusCode) {
    m.statuses_overflow[r].fetch_add(1, relaxed);
    return;
  }
  int8_t& e = writer.entry[r][status];
  if (e < 0) {
    uint32_t used = m.statuses_used.load(relaxed);  // this thread is the only writer
    if (used >= kStatusEntries) {
      m.statuses_overflow[r].fetch_add(1, relaxed);
      return;
    }
    m.statuses[used].key.store(static_cast<uint32_t>(r * 1000 + status), relaxed);
    m.statuses_used.store(used + 1, std::memory_order_release);  // readers see the key with the entry
    e = static_cast<int8_t>(used);
  }
  m.statuses[e].count.fetch_add(1, relaxed);
}

void observe_request_duration(MetricsWriter& writer, MetricRoute route, uint64_t ns) {
  observe(writer.slot->request_duration[static_cast<int>(route)], ns);
}

void observe_run_duration(MetricsWriter& writer, uint64_t ns) { observe(writer.slot->run_duration, ns); }

void set_in_flight(MetricsWriter& writer, uint32_t requests) { writer.slot->in_flight.store(requests, relaxed); }

// ---- the reader ---------------------------------------------------------------------------------------------

std::vector<WorkerMemory> read_worker_memory(const Table& table) {
  std::vector<WorkerMemory> memory;
  long page = sysconf(_SC_PAGESIZE);
  for (const Slot& slot : table.slots) {
    int32_t pid = slot.pid.load(relaxed);
    if (!live(slot) || pid <= 0) continue;
    char path[64], text[128];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // exited since the table was read
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) continue;
    text[n] = '\0';
    unsigned long long size = 0, resident = 0;
    if (sscanf(text, "%llu %llu", &size, &resident) != 2) continue;
    memory.push_back(WorkerMemory{pid, static_cast<uint64_t>(resident) * static_cast<uint64_t>(page)});
  }
  return memory;
}

void render_metrics(std::string& out, const Table& table, const BuildInfo& build,
                    std::span<const WorkerMemory> memory) {
  auto to = std::back_inserter(out);

  append_header(out, "azmlinfsrv_build_info", "gauge", "Always 1; the labels name the server's and Python's versions.");
  out += "azmlinfsrv_build_info{version=\"";
  append_label_value(out, build.version);
  out += "\",python=\"";
  append_label_value(out, build.python);
  out += "\"} 1\n";

  // Keyed (route, status): the same pair counted in several slots is one sample.
  std::map<uint32_t, uint64_t> answers;
  uint64_t overflow[kMetricRoutes] = {};
  uint64_t in_flight = 0;
  for (const Slot& slot : table.slots) {
    const SlotMetrics& m = slot.metrics;
    uint32_t used = m.statuses_used.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < used && i < kStatusEntries; ++i)
      answers[m.statuses[i].key.load(relaxed)] += m.statuses[i].count.load(relaxed);
    for (int r = 0; r < kMetricRoutes; ++r) overflow[r] += m.statuses_overflow[r].load(relaxed);
    if (live(slot)) in_flight += m.in_flight.load(relaxed);
  }
  append_header(out, "azmlinfsrv_requests_total", "counter",
                "Requests answered on the scoring and health ports, by route (health, score, swagger, other) and "
                "status code, over all workers since the server started.");
  for (auto [key, count] : answers)
    fmt::format_to(to, "azmlinfsrv_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", route_name(key / 1000),
                   key % 1000, count);
  for (int r = 0; r < kMetricRoutes; ++r)
    if (overflow[r])
      fmt::format_to(to, "azmlinfsrv_requests_total{{route=\"{}\",status=\"other\"}} {}\n", route_name(r),
                     overflow[r]);

  append_header(out, "azmlinfsrv_request_duration_seconds", "histogram",
                "Time from a request's last byte to its answer (a streamed answer's head), by route; requests "
                "refused before they were read completely are not in it.");
  for (int r = 0; r < kMetricRoutes; ++r)
    append_histogram(out, "azmlinfsrv_request_duration_seconds", fmt::format("route=\"{}\",", route_name(r)), table,
                     [r](const Slot& s) -> const Histogram& { return s.metrics.request_duration[r]; });

  append_header(out, "azmlinfsrv_run_duration_seconds", "histogram",
                "Time the Python thread spent on one score request: building run()'s arguments, run() itself, "
                "converting its result.");
  append_histogram(out, "azmlinfsrv_run_duration_seconds", "", table,
                   [](const Slot& s) -> const Histogram& { return s.metrics.run_duration; });

  append_header(out, "azmlinfsrv_requests_in_flight", "gauge",
                "Score requests queued for run() or inside it (a streamed answer until its last chunk), over all "
                "workers.");
  fmt::format_to(to, "azmlinfsrv_requests_in_flight {}\n", in_flight);

  append_header(out, "azmlinfsrv_worker_restarts_total", "counter",
                "Workers replaced, by cause: crash (died unasked), timeout (WORKER_TIMEOUT, or run() stuck past "
                "the scoring timeout), max_requests, reload (SIGHUP or --reload).");
  for (int c = 0; c < kRestartCauses; ++c)
    fmt::format_to(to, "azmlinfsrv_worker_restarts_total{{cause=\"{}\"}} {}\n", cause_name(c),
                   table.restarts[c].load(relaxed));

  append_header(out, "azmlinfsrv_worker_resident_memory_bytes", "gauge",
                "Resident memory of each worker process, read from /proc/<pid>/statm when scraped.");
  for (const WorkerMemory& w : memory)
    fmt::format_to(to, "azmlinfsrv_worker_resident_memory_bytes{{pid=\"{}\"}} {}\n", w.pid, w.rss_bytes);
}

}  // namespace worker
