// python_bridge/: the embedded interpreter of one worker. Loads the entry script, analyses run(),
// calls init() and run(), converts results to bytes, installs the print hook. Knows nothing of sockets
// or HTTP parsing: requests come in as plain fields, responses go out as status, headers and body.
// Every function runs on the worker's main thread, the only thread that ever holds the GIL here.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bridge {

struct BootOptions {
  // The Python whose standard library and site-packages the worker uses: `interpreter` when given
  // (--python), else the active virtual environment's ($VIRTUAL_ENV/bin/python), else
  // `default_interpreter` (the one the build embedded). It must be the embedded Python's version.
  std::string interpreter;
  std::string default_interpreter;
  std::string package_dir;  // folder that holds azureml_inference_server_http
  // True for the one worker that reports a boot failure, so N workers print one traceback.
  std::function<bool()> claim_error_report;
  // Fill ScoreResponse::failure_detail when run() raises (--dev, --capture).
  bool failure_detail = false;
  // A script that fails to load or whose init() raises is BootOutcome::load_failed, not failed (--reload).
  bool keep_load_failure = false;
  // --replay: breakpoint() stops at the terminal; post_mortem (--pdb): so does an exception run() raises,
  // once it is logged.
  bool replay = false;
  bool post_mortem = false;
};

enum class InputMode { json_string, raw, object };

// Initialises CPython in this (forked) process, loads the entry script and calls init().
// failed: the boot failed and has been reported; the caller exits with code 3. load_failed (only with
// BootOptions::keep_load_failure): the script failed to load or init() raised, reported too; the caller
// serves load_failure() instead of run() until it is replaced.
enum class BootOutcome { ready, failed, load_failed };
BootOutcome boot(const BootOptions& options);
// After BootOutcome::load_failed: the answer's JSON body, {"message": ..., "stage": "load" or "init",
// "error": {failure detail, as ScoreResponse::failure_detail}}.
const std::string& load_failure();
InputMode input_mode();

using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

struct ScoreRequest {
  std::string_view method;
  std::string_view target;  // path and query as sent, for the raw request object
  std::string_view query;   // raw, without '?'
  std::string_view content_type;
  const HeaderList* headers = nullptr;
  std::string_view body;
  std::string_view remote_addr;  // for the raw request's environ
  int server_port = 0;
  std::string_view protocol;     // "HTTP/1.1"
  std::string_view request_id;   // x-request-id, for the script's log lines in the JSON log format
};

struct ScoreResponse {
  int status = 200;
  std::string reason;  // empty: the standard phrase for status
  // Wire order, as the script set them; the caller frames the body and checks them (a Content-Length
  // among them is the script's, to compare with the body).
  std::vector<std::pair<std::string, std::string>> headers;
  // The body, when it was made here (JSON, a small Response body, a stream's first chunk); see body_view().
  std::string body;
  // A large body is not copied out of Python (a copy would double what a 200 MB answer costs): `held_body`
  // is the buffer of an immutable Python object (bytes, or json.dumps's str) that `body_hold`, a strong
  // reference, keeps alive. Any thread may read the bytes; the reference must be given back with
  // release_holds() on the thread that runs Python, once nothing reads them any more.
  void* body_hold = nullptr;
  std::string_view held_body;
  // Non-empty: the request failed; the body is {"message": error_message} as JSON, with
  // x-ms-run-function-failed from run_function_failed, and headers/body above are unused.
  std::string error_message;
  bool run_function_failed = false;
  // When the boot asked for it (BootOptions::failure_detail) and run() raised (the scoring timeout's
  // TimeoutError included): a JSON object {"type": "ZeroDivisionError", "message": "division by zero",
  // "frames": [{"file": "/app/score.py", "line": 12, "function": "run"}, ...], "traceback": "Traceback
  // (most recent call last): ..."}, the frames the script's (outermost first). Empty otherwise.
  std::string failure_detail;
  bool has_exec_ms = false;  // x-ms-run-fn-exec-ms only when run() returned normally
  double exec_ms = 0;
  // A streamed body (docs/behaviour.md 4.9): `body` holds the first chunk (already taken, so a body that fails
  // at once is a 500 before anything is sent) and next_chunk() yields the rest. The stream holds a
  // Python iterator until end_stream().
  void* stream = nullptr;
  // The body is streamed (an iterator, not bytes), so it goes out chunked, as the reference sends it,
  // even when it turns out empty: then `body` is empty and `stream` is already null.
  bool streamed = false;
  // A Response object run() returned (a new reference): its close() is due once the answer has been
  // written or has failed (PEP 3333; Werkzeug's close runs the call_on_close callbacks). The I/O thread
  // takes it when it is done with the job and hands it back to the Python thread for close_response().
  void* closer = nullptr;

  std::string_view body_view() const { return body_hold ? held_body : std::string_view(body); }

  // As new, for the next request (the stream must have ended, and a held body been given back with
  // release_holds()); a small body keeps its capacity.
  void clear() {
    status = 200;
    reason.clear();
    headers.clear();
    body.clear();
    if (body.capacity() > 4096) std::string().swap(body);
    error_message.clear();
    run_function_failed = false;
    failure_detail.clear();
    has_exec_ms = false;
    exec_ms = 0;
    stream = nullptr;
    streamed = false;
    closer = nullptr;  // taken already (worker/job_pool.cpp release_job)
    body_hold = nullptr;
    held_body = {};
  }
};

// A body at least this large is held in its Python object rather than copied (ScoreResponse::body_hold);
// a smaller one is copied, which costs less than handing the reference back to the Python thread.
constexpr size_t kHeldBodyMin = 64 * 1024;

// Calls run() for one request under the scoring timeout and builds the response (docs/behaviour.md 3.5, 4.5).
void score(const ScoreRequest& request, ScoreResponse& response);

// The swagger documents built at boot, as (version, JSON bytes) for "2", "3", "3.1" in that order, only
// the versions this script supports. Read-only after boot: the I/O thread serves them without the GIL.
const std::vector<std::pair<std::string, std::string>>& swagger_documents();

// The next chunk of a streamed body; false at the end. An exception from the iterator is logged and
// sets *failed: the response cannot be completed and the connection must be cut.
bool next_chunk(ScoreResponse& response, std::string& chunk, bool* failed);
// Releases the stream's iterator (closing a generator the client no longer waits for).
void end_stream(ScoreResponse& response);
// Calls close() of a Response object run() returned (ScoreResponse::closer) and releases it; an exception
// there is logged. Takes the GIL: call it on the Python thread.
void close_response(void* closer);
// Gives back the Python references of held bodies (ScoreResponse::body_hold), taking the GIL once for
// all of them; on the thread that runs Python. Empties `holds`.
void release_holds(std::vector<void*>& holds);
// SCORING_TIMEOUT_MS as boot read it; 0 when off. The I/O thread answers a run() that is stuck in
// native code past this deadline, where the TimeoutError cannot reach it.
long scoring_timeout_ms();
// AML_CORS_ORIGINS as the environment or config.json gives it (config.json's values never reach
// os.environ: the script must see the environment the reference gives it); absent: CORS off.
const std::optional<std::string>& cors_origins();
// When the running run() reaches SCORING_TIMEOUT_MS (CLOCK_MONOTONIC ns); 0 while none runs or when the
// timeout is off. Any thread may ask: the worker sends SIGALRM to the Python thread at that time, and its
// handler raises TimeoutError inside run() (docs/behaviour.md 2.4).
uint64_t scoring_deadline_ns();
// True once the scoring timeout's TimeoutError has been raised inside the current run(): the
// interpreter got control back, so run() is unwinding (or swallowed it), not stuck in native code.
// Any thread may ask; score() clears it when a run() starts.
bool scoring_timeout_raised();

// The embedded interpreter's version ("3.11.2"). Needs no GIL; call it once, its buffer is static.
std::string python_version();

// Flushes Python's stdout/stderr and runs atexit hooks before the worker exits.
void shutdown();

}  // namespace bridge
