// --replay FILE: one request through the same input path as a worker's (modes, headers, the raw
// request), in this process, without HTTP: boot, init(), run(), the answer on stdout. The log (and the
// script's prints, and pdb) go to stderr meanwhile, so the answer can be kept apart: `> answer.txt`.
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "../http/http.h"
#include "../python_bridge/bridge.h"
#include "capture.h"
#include "worker.h"

namespace worker {

namespace {

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

void fail(std::string_view message) { write_all(STDERR_FILENO, fmt::format("azmlinfsrv: error: {}\n", message)); }

// The answer as a client would read it: the status line, the headers that carry meaning (the script's,
// the content type, x-ms-run-function-failed, x-ms-run-fn-exec-ms), a blank line, the body.
std::string render_answer(bridge::ScoreResponse& response) {
  bool failed = !response.error_message.empty();
  std::string body = failed ? http::json_message(response.error_message) : std::string(response.body_view());
  if (response.streamed) {
    std::string chunk;
    bool broken = false;
    while (bridge::next_chunk(response, chunk, &broken)) body += chunk;
    bridge::end_stream(response);
    if (broken) body += "\n[the stream ended with the exception logged above]";
  }
  std::string_view reason = response.reason.empty() || failed ? http::reason_phrase_upper(response.status)
                                                              : std::string_view(response.reason);
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", response.status, reason);
  if (failed) {
    out += "Content-Type: application/json\r\n";
  } else {
    for (const auto& [name, value] : response.headers)
      if (!http::iequals(name, "x-ms-run-function-failed")) out += fmt::format("{}: {}\r\n", name, value);
  }
  out += fmt::format("x-ms-run-function-failed: {}\r\n", response.run_function_failed ? "True" : "False");
  if (response.has_exec_ms) out += fmt::format("x-ms-run-fn-exec-ms: {:.3f}\r\n", response.exec_ms);
  out += "\r\n";
  out += body;
  if (!body.empty() && body.back() != '\n') out += '\n';
  return out;
}

}  // namespace

int replay(const ReplayOptions& options) {
  std::ifstream file(options.file, std::ios::binary);
  if (!file) {
    fail(fmt::format("--replay {}: cannot read the file: {}. Give a file --capture saved, or a JSON body.",
                     options.file, strerror(errno)));
    return 2;
  }
  std::stringstream content;
  content << file.rdbuf();
  ReplayInput input = read_replay_input(content.str());
  if (!input.error.empty()) {
    fail(fmt::format("--replay {}: this capture file cannot be replayed: {}. Fix the field, or give a plain JSON "
                     "body instead.",
                     options.file, input.error));
    return 2;
  }

  // stdout is the answer's alone: the log, the script's prints and pdb go to stderr until it is written.
  int answer_fd = dup(STDOUT_FILENO);
  if (answer_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) answer_fd = STDOUT_FILENO;
  bridge::BootOptions boot;
  boot.interpreter = options.interpreter;
  boot.default_interpreter = options.default_interpreter;
  boot.package_dir = options.package_dir;
  boot.claim_error_report = [] { return true; };
  boot.replay = true;
  boot.post_mortem = options.pdb;
  if (bridge::boot(boot) != bridge::BootOutcome::ready) return kExitBootFailed;

  const CapturedRequest& r = input.request;
  std::string target = r.query.empty() ? r.path : r.path + "?" + r.query;
  bridge::HeaderList headers;
  std::string_view content_type;
  for (const auto& [name, value] : r.headers) {
    headers.emplace_back(name, value);
    if (content_type.empty() && http::iequals(name, "content-type")) content_type = value;
  }
  bridge::ScoreRequest request;
  request.method = r.method;
  request.target = target;
  request.query = r.query;
  request.content_type = content_type;
  request.headers = &headers;
  request.body = r.body;
  request.remote_addr = "127.0.0.1";
  request.server_port = options.server_port;
  request.protocol = "HTTP/1.1";
  request.request_id = r.request_id;
  bridge::ScoreResponse response;
  bridge::score(request, response);
  std::string answer = render_answer(response);
  bool raised = response.run_function_failed && !response.error_message.empty();
  std::vector<void*> holds;
  if (response.body_hold) holds.push_back(response.body_hold);
  bridge::release_holds(holds);
  bridge::close_response(response.closer);
  bridge::shutdown();
  if (answer_fd != STDOUT_FILENO) dup2(answer_fd, STDOUT_FILENO);
  write_all(STDOUT_FILENO, answer);
  return raised ? 1 : 0;
}

}  // namespace worker
