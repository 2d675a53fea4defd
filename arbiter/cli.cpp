// The command line, read from the options table (options.h) and reported the way the reference's
// argparse reports it, since scripts and CI gates read those streams and exit codes
// (docs/behaviour.md 1.2).
#include <fmt/format.h>

#include "arbiter.h"
#include "options.h"

#ifndef AZMLINFSRV_VERSION
#define AZMLINFSRV_VERSION "0"
#endif

namespace arbiter {

namespace {

CommandLine exit_with(int code, std::string out, std::string err = {}) {
  CommandLine result;
  result.outcome = CommandLine::Outcome::exit;
  result.exit_code = code;
  result.out = std::move(out);
  result.err = std::move(err);
  return result;
}

// argparse's error: the usage and the message on stderr, exit 1. The description and the options
// follow on stdout (the reference's launcher prints its help after argparse's error).
CommandLine fail(const std::string& message) {
  return exit_with(1, "\n" + help_text(), fmt::format("{}azmlinfsrv: error: {}\n", usage_text(), message));
}

// argparse takes "-5" as a value (a negative number), "--x" or "-h" as the next option.
bool looks_like_option(std::string_view a) {
  if (a.size() < 2 || a[0] != '-') return false;
  return !parse_integer(a, INT64_MIN / 2, INT64_MAX / 2);
}

// Checks one value against its row and stores it; the argparse message when it does not fit.
std::optional<std::string> take(const Option& o, const std::string& value, Flags& flags) {
  int i = static_cast<int>(o.id);
  if (o.type == Type::text) {
    flags.text[i] = value;
  } else if (o.type == Type::choice) {
    if (value != "text" && value != "json")
      return fmt::format("argument {}: invalid choice: '{}' (choose from 'text', 'json')", o.flag, value);
    flags.text[i] = value;
  } else if (auto number = parse_integer(value, o.low, o.high)) {
    flags.number[i] = *number;
  } else if (*o.validator) {
    std::string limit = o.id == Opt::worker_count ? ": the most workers one server runs" : "";
    return fmt::format("argument {}: invalid {} value: '{}' (expected {}{})", o.flag, o.validator, value,
                       describe_range(o), limit);
  } else {
    return fmt::format("argument {}: invalid value: '{}' (expected an integer from {} to {})", o.flag, value, o.low,
                       o.high);
  }
  return std::nullopt;
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--version") return exit_with(0, fmt::format("azmlinfsrv {}\n", AZMLINFSRV_VERSION));
    if (a == "-h" || a == "--help") return exit_with(0, usage_text() + "\n" + help_text());
  }

  // Only the exact spellings (no abbreviations); a flag given twice keeps its last value.
  CommandLine result;
  std::string unknown;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    std::string_view name = a.substr(0, a.find('='));
    const Option* found = nullptr;
    for (const Option& o : options())
      if (o.flag && name == o.flag) found = &o;
    if (!found) {
      unknown += (unknown.empty() ? "" : " ") + std::string(a);
      continue;
    }
    std::optional<std::string> value;
    if (name.size() < a.size()) value = std::string(a.substr(name.size() + 1));
    if (found->type == Type::toggle) {
      if (value) return fail(fmt::format("argument {}: ignored explicit argument '{}'", found->flag, *value));
      result.flags.on[static_cast<int>(found->id)] = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc || looks_like_option(argv[i + 1]))
        return fail(fmt::format("argument {}: expected one argument", found->flag));
      value = argv[++i];
    }
    if (auto error = take(*found, *value, result.flags)) return fail(*error);
  }
  if (!unknown.empty()) return fail("unrecognized arguments: " + unknown);
  return result;
}

}  // namespace arbiter
