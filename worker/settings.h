// The worker's transport settings (HTTP limits and connection timeouts), by name. The arbiter knows
// them only as named positive integers: it validates the flags and environment variables listed here
// and exports the result; the worker reads the environment. What each one means stays in the worker.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace worker {

struct Tunable {
  const char* flag;         // "--limit_request_line"
  const char* env;          // "LIMIT_REQUEST_LINE"
  uint64_t default_value;
  const char* help;         // one line for --help
};

// Largest accepted value: big enough for any size or millisecond count, small enough that adding a
// timeout to a nanosecond clock cannot overflow.
constexpr uint64_t kTunableMax = uint64_t{1} << 40;

std::span<const Tunable> tunables();

// A plain positive integer from 1 to kTunableMax, or nullopt.
std::optional<uint64_t> parse_tunable(const std::string& text);

// The value the worker uses: the environment variable when it is valid, otherwise the default.
uint64_t tunable_value(const char* env);

}  // namespace worker
