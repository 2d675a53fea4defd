// A request on disk (--capture writes it, --replay reads it): one JSON object per file, the format of
// docs/debugging.md "Capture a failing request, replay it under pdb". Pure functions; internal to worker/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace worker {

constexpr std::string_view kCaptureFormat = "azmlinfsrv-capture/1";

struct CapturedRequest {
  std::string time;        // UTC, "2026-12-03T16:45:12.123Z"
  std::string request_id;  // the x-request-id the server used
  std::string failure;     // "exception", "timeout" or "crash"
  int status = 0;          // what the client was answered; 0: unknown
  std::string method;
  std::string path;
  std::string query;  // raw, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;   // bytes; written as "body" when UTF-8, else as "body_base64"
  std::string traceback;
};

std::string capture_json(const CapturedRequest& request);

// What a --replay file holds: a capture, or (any other content) a plain body for POST /score.
struct ReplayInput {
  bool is_capture = false;
  CapturedRequest request;
  std::string error;  // a capture whose fields are wrong: which one and what it must be
};
ReplayInput read_replay_input(std::string_view text);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// "20261203T164512.123Z-<request id>.json": names that sort by time; the id keeps only [A-Za-z0-9_-].
std::string capture_file_name(std::string_view time, std::string_view request_id);

// ---- the folder (--capture DIR) ----------------------------------------------------------------------

// The newest capture is also DIR/latest.json (a link); DIR keeps the last kCaptureKeep.
constexpr size_t kCaptureKeep = 100;

// Now, as CapturedRequest::time writes it.
std::string capture_time_now();

struct Job;
// A job's request as a capture, stamped now, without traceback.
CapturedRequest captured_request(const Job& job, std::string_view failure, int status);

// The traceback of a failure detail (bridge::ScoreResponse::failure_detail); empty when it has none.
std::string traceback_of(std::string_view failure_detail);

// Deletes the oldest captures beyond kCaptureKeep.
void prune_captures(const std::string& dir);

// Writes one capture into dir under a temporary name, renames it into place, points latest.json at it
// and prunes the oldest; logs the saved path and the command that replays it (or why it could not save).
void save_capture(const std::string& dir, const CapturedRequest& request);

// A capture written by a fatal-signal handler, which may only call open, write, rename and symlink:
// everything but the Python stack is rendered before run() starts (prepare_crash_capture), and the
// handler writes prefix, the escaped stack, suffix, then the renames and the log line.
struct PreparedCapture {
  std::string prefix, suffix;            // the file around the traceback's JSON string content
  std::string temporary, path;           // written, then renamed
  std::string latest_temporary, latest;  // the link to it, likewise
  std::string link_target;               // the file's name, relative to dir
  std::string log_line;                  // a whole log line naming the file
};
void prepare_crash_capture(const std::string& dir, const CapturedRequest& request, PreparedCapture& into);
// Async-signal-safe: writes the prepared capture with `traceback_json` (already escaped) as its traceback.
void write_prepared_capture(const PreparedCapture& capture, const char* traceback_json, size_t size);

}  // namespace worker
