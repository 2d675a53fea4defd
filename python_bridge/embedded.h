// Internal to python_bridge/: the objects boot() leaves for score(). Not part of the room's surface.
#pragma once

#define PY_SSIZE_T_CLEAN  // Py_ssize_t lengths for the "#" formats
#include <Python.h>

#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bridge.h"

namespace bridge::embedded {

// Strong references, created once at boot and never released: the worker exits without finalizing.
struct Entry {
  PyObject* run = nullptr;
  PyObject* input_name = nullptr;  // str: run()'s input parameter
  bool wants_headers = false;
  long scoring_timeout_ms = 0;
  std::optional<std::string> cors_origins;  // AML_CORS_ORIGINS, from the environment or config.json
  InputMode mode = InputMode::json_string;
  PyObject* is_response = nullptr;     // _requests.is_response
  PyObject* rare_paths = nullptr;      // the _requests module: a request's rare paths
  PyObject* loaded = nullptr;          // the _server.Entry boot() returned
  PyObject* empty_tuple = nullptr;
  PyObject* timeout_error = nullptr;
  PyObject* client_error = nullptr;  // _requests.ClientError: a 4xx for the client, not a failure
  PyThreadState* released = nullptr;  // the main thread's state while the GIL is released
  bool warned_form_body = false;
  PyObject* logging_module = nullptr;  // _logging, whose current_request_id JSON log records carry; null in text
  std::vector<std::pair<std::string, std::string>> swaggers;
};

Entry& entry();

// Set when the scoring timeout's TimeoutError is raised; cleared when a run() starts.
extern std::atomic<bool> timeout_raised;

// When the running run() times out (CLOCK_MONOTONIC ns); 0 while none runs (scoring_timer.cpp).
extern std::atomic<uint64_t> run_deadline_ns;
// The SIGALRM handler's question: is the running run() past its deadline? (The signal may be late: meant
// for a run() that has returned since.) A yes also tells the I/O thread that run() is unwinding.
bool scoring_deadline_passed();

// Holds the GIL for a scope; between calls the worker's main thread waits for work without it.
class Gil {
 public:
  Gil() { PyEval_RestoreThread(entry().released); }
  ~Gil() { entry().released = PyEval_SaveThread(); }
  Gil(const Gil&) = delete;
  Gil& operator=(const Gil&) = delete;
};

}  // namespace bridge::embedded
