// The request-id rules of docs/behaviour.md 3.3, and native UUID4s for them.
#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>

#include "http.h"

namespace http {

namespace {

constexpr size_t kMaxIdLength = 100;

std::string header_or_empty(const Request& r, std::string_view name) {
  const std::string* v = r.find_header(name);
  return v ? *v : std::string{};
}

// xoshiro256**: fast and good enough for ids that only need to be unique, never secret.
struct Xoshiro {
  uint64_t s[4];
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

// Bumped in every forked child, so that a child does not repeat its parent's sequence; asking getpid()
// per id instead would be one system call per request.
std::atomic<unsigned> fork_generation{1};
[[maybe_unused]] const int fork_watch = pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });

}  // namespace

RequestIds resolve_request_ids(const Request& request) {
  RequestIds ids;
  if (const std::string* r = request.find_header("x-request-id")) ids.request_id = *r;
  else ids.request_id = new_uuid4();
  if (ids.request_id.size() > kMaxIdLength) {
    ids.outcome = RequestIds::Outcome::request_id_too_long;
    ids.request_id.clear();
    return ids;
  }
  std::string legacy = header_or_empty(request, "x-ms-request-id");
  std::string client = header_or_empty(request, "x-ms-client-request-id");
  if (!legacy.empty()) {
    ids.deprecated_header_used = true;
    ids.legacy_id = legacy;
    ids.client_id = client.empty() ? legacy : client;
  } else {
    ids.client_id = client;
    ids.legacy_id = client.empty() ? ids.request_id : client;
  }
  if (ids.legacy_id.size() > kMaxIdLength || ids.client_id.size() > kMaxIdLength) {
    ids.outcome = RequestIds::Outcome::client_ids_too_long;
    ids.legacy_id.clear();
    ids.client_id.clear();
  }
  return ids;
}

std::string new_uuid4() {
  thread_local Xoshiro rng;
  thread_local unsigned seeded_for = 0;
  if (seeded_for != fork_generation.load(std::memory_order_relaxed)) {
    if (getrandom(rng.s, sizeof rng.s, 0) != sizeof rng.s) {
      rng.s[0] = static_cast<uint64_t>(getpid()) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(time(nullptr));
      rng.s[1] = reinterpret_cast<uintptr_t>(&rng) | 1;
      rng.s[2] = 0x243F6A8885A308D3ull;
      rng.s[3] = 0x13198A2E03707344ull;
    }
    seeded_for = fork_generation.load(std::memory_order_relaxed);
  }
  uint64_t hi = rng.next(), lo = rng.next();
  hi = (hi & ~0xF000ull) | 0x4000ull;                 // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  static const char hex[] = "0123456789abcdef";
  char out[36];
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int k = nibbles - 1; k >= 0; --k) out[pos++] = hex[(v >> (4 * k)) & 0xF];
  };
  put(hi >> 32, 8);
  out[pos++] = '-';
  put(hi >> 16, 4);
  out[pos++] = '-';
  put(hi, 4);
  out[pos++] = '-';
  put(lo >> 48, 4);
  out[pos++] = '-';
  put(lo, 12);
  return std::string(out, sizeof out);
}

}  // namespace http
