// log/: the one native log writer, shared by the arbiter and the workers. Lines in the contract's format
// (docs/behaviour.md 6.1): "2026-11-25 19:41:50,096 I [14939] azmlinfsrv - message", timestamps in UTC; or,
// with the JSON format, one JSON object per line for log shippers.
#pragma once

#include <string>
#include <string_view>

namespace logline {

enum class Level : char { debug = 'D', info = 'I', warning = 'W', error = 'E', critical = 'C' };

// Where a line goes: the contract puts the server's own lines on stdout and gunicorn's lifecycle
// lines on stderr.
enum class Stream { out = 1, err = 2 };

enum class Format { text, json };

// Process-wide; set by the launcher before any fork, so every worker writes the same format.
void set_format(Format format);
Format format();

// Writes one line (or a multi-line message, as tracebacks are) as one write(2), so lines from several
// processes sharing the terminal never interleave mid-line. `request_id` ties a line to its request
// (shown in the JSON format). On a thread that called buffer_this_thread(), lines wait for flush().
void write(Stream stream, Level level, std::string_view logger, std::string_view message,
           std::string_view request_id = {});

// The line write() would write, for a writer that cannot format one when it writes (a signal handler).
std::string render(Level level, std::string_view logger, std::string_view message, std::string_view request_id = {});
// The calling thread keeps its lines until flush(): the I/O thread writes a whole loop pass of
// request lines with one write(2) per stream instead of one per line.
void buffer_this_thread();
void flush();

// Appends "2026-11-25 19:41:50,096 I [14939] logger - " to out.
void append_prefix(std::string& out, Level level, std::string_view logger);

// Text the launcher prints as it is (notices, the banner): as-is in the text format, one record per
// block in the JSON format.
void write_block(Stream stream, std::string_view text);

// Writes bytes as they are, retrying short writes.
void write_raw(Stream stream, std::string_view text);

}  // namespace logline
