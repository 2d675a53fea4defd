// log/: the one native log writer, shared by the arbiter and the workers. Lines in the contract's format
// (CONTRACT.md 6.1): "2026-11-25 19:41:50,096 I [14939] azmlinfsrv - message", timestamps in UTC.
#pragma once

#include <string>
#include <string_view>

namespace logline {

enum class Level : char { debug = 'D', info = 'I', warning = 'W', error = 'E', critical = 'C' };

// Where a line goes: the contract puts the server's own lines on stdout and gunicorn's lifecycle
// lines on stderr.
enum class Stream { out = 1, err = 2 };

// Writes one line (or a multi-line message, as tracebacks are) with a single write(2), so lines from
// several processes sharing the terminal never interleave mid-line.
void write(Stream stream, Level level, std::string_view logger, std::string_view message);

// Appends "2026-11-25 19:41:50,096 I [14939] logger - " to out.
void append_prefix(std::string& out, Level level, std::string_view logger);

// Writes text as it is (banner, plain prints), retrying short writes.
void write_raw(Stream stream, std::string_view text);

}  // namespace logline
