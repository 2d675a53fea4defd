// The hot path: one request in, run() called by keyword under the scoring timeout, one response out.
// Plain CPython API here, since every call counts; the rare paths go back to _requests.py.
#include <algorithm>
#include <chrono>
#include <utility>
#include <string>

#include "../base/base.h"
#include "../log/log.h"
#include "embedded.h"
#include "json_encode.h"

namespace bridge {

namespace {

using embedded::Entry;

constexpr const char* kScoringError = "An unexpected error occurred in scoring script. Check the logs for more info.";
constexpr const char* kInternalError = "An unexpected internal error occurred. Check the logs for more info.";

// Owns one reference.
class Ref {
 public:
  explicit Ref(PyObject* p = nullptr) : p_(p) {}
  ~Ref() { Py_XDECREF(p_); }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  Ref& operator=(Ref&& other) noexcept {
    std::swap(p_, other.p_);
    return *this;
  }
  PyObject* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  PyObject* p_;
};

void set_json_message(ScoreResponse& r, int status, std::string message, bool run_failed) {
  r.status = status;
  r.streamed = false;
  r.headers.clear();
  r.body.clear();
  r.error_message = std::move(message);
  r.run_function_failed = run_failed;
}

// Calls a _requests helper; returns a new reference or nullptr with the Python error set.
PyObject* call_server(const char* name, PyObject* arg1, PyObject* arg2 = nullptr) {
  Entry& e = embedded::entry();
  Ref fn(PyObject_GetAttrString(e.rare_paths, name));
  if (!fn) return nullptr;
  return arg2 ? PyObject_CallFunctionObjArgs(fn.get(), arg1, arg2, nullptr)
              : PyObject_CallFunctionObjArgs(fn.get(), arg1, nullptr);
}

// Logging itself failed (a broken logging config, say). Never PyErr_Print here: for a SystemExit it
// would end the worker.
void log_unloggable() {
  PyErr_Clear();
  logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv",
                 "An exception occurred and could not be logged through Python's logging; check the logging "
                 "configuration (logging.json).");
}

// Logs the pending Python exception through _requests.log_exception (ERROR "Encountered Exception: ..."),
// or through another of its loggers, given one more argument. A logger that returns text (the failure
// detail of log_run_exception) leaves it in *returned.
void log_pending_exception(const char* logger = "log_exception", PyObject* arg2 = nullptr,
                           std::string* returned = nullptr) {
  if (!PyErr_Occurred()) {
    logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv",
                   "The server's Python bridge failed without a Python exception. Please report this as a bug.");
    return;
  }
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb && value) PyException_SetTraceback(value, tb);
  if (value) {
    Ref done(call_server(logger, value, arg2));
    if (!done) log_unloggable();
    else if (returned && PyUnicode_Check(done.get())) {
      Py_ssize_t size = 0;
      if (const char* text = PyUnicode_AsUTF8AndSize(done.get(), &size)) returned->assign(text, size);
      else PyErr_Clear();
    }
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

bool is_form_content_type(std::string_view ct) {
  std::string_view mime = ct.substr(0, ct.find(';'));
  while (!mime.empty() && mime.back() == ' ') mime.remove_suffix(1);
  auto iequal = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
    return true;
  };
  return iequal(mime, "application/x-www-form-urlencoded") || iequal(mime, "multipart/form-data");
}

// The input of an undecorated run() (docs/behaviour.md 4.4). Returns nullptr after filling an error response.
PyObject* json_string_input(const ScoreRequest& req, ScoreResponse& resp) {
  Entry& e = embedded::entry();
  if (req.method == "GET") {
    Ref query(PyUnicode_DecodeLatin1(req.query.data(), static_cast<Py_ssize_t>(req.query.size()), nullptr));
    PyObject* input = query ? call_server("query_to_json", query.get()) : nullptr;
    if (!input) {
      log_pending_exception();
      set_json_message(resp, 500, kInternalError, false);
    }
    return input;
  }
  if (is_form_content_type(req.content_type)) {
    if (!e.warned_form_body) {
      e.warned_form_body = true;
      Ref ct(PyUnicode_DecodeLatin1(req.content_type.data(), static_cast<Py_ssize_t>(req.content_type.size()), nullptr));
      Ref done(call_server("warn_form_body", ct.get()));
      if (!done) PyErr_Clear();
    }
    return PyUnicode_FromStringAndSize("", 0);
  }
  PyObject* input = PyUnicode_DecodeUTF8(req.body.data(), static_cast<Py_ssize_t>(req.body.size()), "strict");
  if (input) return input;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  std::string message = "Input cannot be decoded as UTF-8: ";
  if (Ref text{value ? PyObject_Str(value) : nullptr}) {
    if (const char* c = PyUnicode_AsUTF8(text.get())) message += c;
  }
  PyErr_Clear();
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  set_json_message(resp, 400, message, false);
  return nullptr;
}

PyObject* header_pairs(const ScoreRequest& req) {
  Ref pairs(PyList_New(0));
  if (!pairs) return nullptr;
  for (const auto& [name, value] : *req.headers) {
    Ref tuple(Py_BuildValue("(s#s#)", name.data(), static_cast<Py_ssize_t>(name.size()), value.data(),
                            static_cast<Py_ssize_t>(value.size())));
    if (!tuple || PyList_Append(pairs.get(), tuple.get()) < 0) return nullptr;
  }
  Py_INCREF(pairs.get());
  return pairs.get();
}

PyObject* headers_dict(const ScoreRequest& req) {
  Ref pairs(header_pairs(req));
  return pairs ? call_server("headers_dict", pairs.get()) : nullptr;
}

// A _requests.ClientError pending: fills the response with its status and message and clears it.
bool take_client_error(ScoreResponse& resp) {
  Entry& e = embedded::entry();
  if (!PyErr_ExceptionMatches(e.client_error)) return false;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  Ref status(PyObject_GetAttrString(value, "status"));
  Ref message(PyObject_GetAttrString(value, "message"));
  const char* text = message ? PyUnicode_AsUTF8(message.get()) : nullptr;
  set_json_message(resp, status ? static_cast<int>(PyLong_AsLong(status.get())) : 400, text ? text : "", false);
  PyErr_Clear();
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  return true;
}

PyObject* bytes_of(std::string_view s) {
  return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

PyObject* text_of(std::string_view s) {  // header-ish text: latin-1, as WSGI hands it over
  return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
}

// run()'s keyword arguments for the script's input mode; nullptr after filling an error response.
PyObject* build_arguments(const ScoreRequest& req, ScoreResponse& resp) {
  Entry& e = embedded::entry();
  if (e.mode == InputMode::object) {
    Ref method(text_of(req.method)), query(text_of(req.query)), content_type(text_of(req.content_type));
    Ref body(bytes_of(req.body));
    Ref fn(PyObject_GetAttrString(e.rare_paths, "object_arguments"));
    PyObject* kwargs = fn ? PyObject_CallFunctionObjArgs(fn.get(), e.loaded, method.get(), query.get(),
                                                         content_type.get(), body.get(), nullptr)
                          : nullptr;
    if (!kwargs && PyErr_Occurred()) {
      if (take_client_error(resp)) return nullptr;
      log_pending_exception();
      set_json_message(resp, 500, kInternalError, false);
    }
    return kwargs;
  }
  Ref input;
  if (e.mode == InputMode::raw) {
    Ref method(text_of(req.method)), target(text_of(req.target)), headers(header_pairs(req)), body(bytes_of(req.body));
    Ref remote(text_of(req.remote_addr)), port(PyLong_FromLong(req.server_port)), protocol(text_of(req.protocol));
    Ref fn(PyObject_GetAttrString(e.rare_paths, "raw_request"));
    input = Ref(fn && headers ? PyObject_CallFunctionObjArgs(fn.get(), method.get(), target.get(), headers.get(),
                                                            body.get(), remote.get(), port.get(), protocol.get(),
                                                            nullptr)
                              : nullptr);
    if (!input) {
      log_pending_exception();
      set_json_message(resp, 500, kInternalError, false);
      return nullptr;
    }
  } else {
    input = Ref(json_string_input(req, resp));
    if (!input) return nullptr;
  }
  PyObject* kwargs = PyDict_New();
  if (!kwargs || PyDict_SetItem(kwargs, e.input_name, input.get()) < 0) {
    Py_XDECREF(kwargs);
    log_pending_exception();
    set_json_message(resp, 500, kInternalError, false);
    return nullptr;
  }
  return kwargs;
}

// The scoring timeout (docs/behaviour.md 2.4): SIGALRM raises TimeoutError inside run(), as in the reference.
// Setting an interval timer around every call would cost two system calls per request, so none is set:
// the deadline is published here, the I/O thread sends SIGALRM to this thread when it passes
// (worker/deadline.cpp), and the handler _server installed checks it before raising.
class ScoringTimer {
 public:
  explicit ScoringTimer(long ms) {
    embedded::timeout_raised.store(false);
    if (ms <= 0) return;
    constexpr long kLongestMs = 1000L * 1000 * 1000 * 1000;  // 31 years: the nanoseconds must not overflow
    embedded::run_deadline_ns.store(base::monotonic_ns() +
                                    static_cast<uint64_t>(std::min(ms, kLongestMs)) * 1000000ull);
  }
  ~ScoringTimer() { embedded::run_deadline_ns.store(0); }
};

// The body is `size` bytes at `data`, inside the immutable `owner` (bytes, or a str's UTF-8): a large one is
// held there (a strong reference, given back by release_holds), a small one copied.
void hold_or_copy(PyObject* owner, const char* data, Py_ssize_t size, ScoreResponse& resp) {
  auto length = static_cast<size_t>(size);
  if (length < kHeldBodyMin) {
    resp.body.assign(data, length);
    return;
  }
  resp.body.clear();
  resp.body_hold = Py_NewRef(owner);
  resp.held_body = std::string_view(data, length);
}

void take_response_object(PyObject* output, ScoreResponse& resp) {
  resp.closer = Py_NewRef(output);  // closed once the answer is out, whatever happens to it
  Ref parts(call_server("response_parts", output));
  int status = 0;
  PyObject *reason = nullptr, *headers = nullptr, *body = nullptr, *chunks = nullptr;
  if (!parts || !PyArg_ParseTuple(parts.get(), "iOOOO", &status, &reason, &headers, &body, &chunks) ||
      !PyList_Check(headers) || !(PyBytes_Check(body) || chunks != Py_None)) {
    if (PyErr_Occurred()) log_pending_exception();
    set_json_message(resp, 500, kInternalError, false);
    return;
  }
  resp.status = status;
  if (const char* r = PyUnicode_AsUTF8(reason)) resp.reason = r;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); ++i) {
    PyObject* pair = PyList_GET_ITEM(headers, i);
    // With their sizes: a NUL inside a name or value must reach the I/O thread's check, not cut it short.
    Py_ssize_t name_len = 0, value_len = 0;
    const char* name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(pair, 0), &name_len);
    const char* value = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(pair, 1), &value_len);
    if (name && value)
      resp.headers.emplace_back(std::string(name, static_cast<size_t>(name_len)),
                                std::string(value, static_cast<size_t>(value_len)));
  }
  PyErr_Clear();
  if (chunks != Py_None) {
    Py_INCREF(chunks);
    resp.stream = chunks;
    resp.streamed = true;
    return;
  }
  hold_or_copy(body, PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), resp);
}

void serialise_output(PyObject* output, ScoreResponse& resp) {
  Entry& e = embedded::entry();
  // The values json.dumps takes are never Responses: ask Python only about other types.
  bool plain = output == Py_None || PyDict_CheckExact(output) || PyList_CheckExact(output) ||
               PyUnicode_CheckExact(output) || PyLong_CheckExact(output) || PyFloat_CheckExact(output) ||
               PyTuple_CheckExact(output) || PyBool_Check(output);
  if (!plain) {
    Ref answer(PyObject_CallOneArg(e.is_response, output));
    if (answer && PyObject_IsTrue(answer.get()) > 0) {
      take_response_object(output, resp);
      return;
    }
    PyErr_Clear();
  }
  if (output == Py_None) {
    resp.body = "{}";
  } else if (encode_json(output, resp.body)) {
    // done natively, byte for byte json.dumps
  } else {
    Ref text(call_server("json_dumps", output));
    Py_ssize_t size = 0;
    const char* utf8 = text ? PyUnicode_AsUTF8AndSize(text.get(), &size) : nullptr;
    if (!utf8) {
      PyObject *type, *value, *tb;
      PyErr_Fetch(&type, &value, &tb);
      PyErr_NormalizeException(&type, &value, &tb);
      if (tb && value) PyException_SetTraceback(value, tb);
      Ref logged(value ? call_server("log_unserialisable", value, output) : nullptr);
      if (!logged) log_unloggable();
      Py_XDECREF(type);
      Py_XDECREF(value);
      Py_XDECREF(tb);
      resp.has_exec_ms = false;
      set_json_message(resp, 500, kInternalError, false);
      return;
    }
    hold_or_copy(text.get(), utf8, size, resp);  // a str's UTF-8 lives as long as the str
  }
  resp.headers.emplace_back("Content-Type", "application/json");
  resp.headers.emplace_back("x-ms-run-function-failed", "False");
}

}  // namespace

namespace {

// The next non-empty item of a stream, with the GIL held. Empty items are skipped: a zero-length chunk
// would end a chunked body early.
bool pull_chunk(PyObject* stream, std::string& chunk, bool* failed) {
  *failed = false;
  for (;;) {
    Ref item(PyIter_Next(stream));
    if (!item) {
      if (PyErr_Occurred()) {
        log_pending_exception();
        *failed = true;
      }
      return false;
    }
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyBytes_AsStringAndSize(item.get(), &data, &size) < 0) {
      log_pending_exception();
      *failed = true;
      return false;
    }
    if (size == 0) continue;
    chunk.assign(data, static_cast<size_t>(size));
    return true;
  }
}

void close_stream(PyObject* iterator) {
  // Closes the generator (runs its finally blocks) when the client left before the end.
  if (PyObject_HasAttrString(iterator, "close")) {
    Ref done(PyObject_CallMethod(iterator, "close", nullptr));
    if (!done) log_pending_exception();
  }
  Py_DECREF(iterator);
}

// Takes the first chunk before anything is sent, as gunicorn does by sending the head with the first
// body bytes: a body that fails at once (a generator raising, an AMLResponse of an int) still gets a
// proper JSON 500. An empty one stays a stream (`streamed`, no iterator left): the reference answers it
// chunked, with only the last chunk.
void prime_stream(ScoreResponse& resp) {
  auto* stream = static_cast<PyObject*>(resp.stream);
  bool failed = false;
  if (pull_chunk(stream, resp.body, &failed)) return;
  resp.stream = nullptr;
  close_stream(stream);
  if (failed) {
    resp.has_exec_ms = false;
    set_json_message(resp, 500, kInternalError, false);
  }
}

}  // namespace

void score(const ScoreRequest& req, ScoreResponse& resp) {
  embedded::Gil gil;
  Entry& e = embedded::entry();
  resp.status = 200;
  resp.reason.clear();
  resp.headers.clear();
  resp.body.clear();
  resp.error_message.clear();
  resp.failure_detail.clear();
  resp.has_exec_ms = false;
  resp.stream = nullptr;
  resp.streamed = false;
  if (resp.body_hold) {  // the worker gives holds back before reusing a response; a caller that did not
    Py_DECREF(static_cast<PyObject*>(resp.body_hold));
    resp.body_hold = nullptr;
  }
  resp.held_body = {};
  if (e.logging_module) {
    Ref id(req.request_id.empty() ? Py_NewRef(Py_None) : text_of(req.request_id));
    if (!id || PyObject_SetAttrString(e.logging_module, "current_request_id", id.get()) < 0) PyErr_Clear();
  }

  Ref kwargs(build_arguments(req, resp));
  if (!kwargs) return;
  if (e.wants_headers) {
    Ref headers(headers_dict(req));
    if (!headers || PyDict_SetItemString(kwargs.get(), "request_headers", headers.get()) < 0) {
      log_pending_exception();
      set_json_message(resp, 500, kInternalError, false);
      return;
    }
  }

  auto started = std::chrono::steady_clock::now();
  Ref output;
  {
    ScoringTimer timer(e.scoring_timeout_ms);
    output = Ref(PyObject_Call(e.run, e.empty_tuple, kwargs.get()));
  }
  auto finished = std::chrono::steady_clock::now();

  if (!output) {
    bool timed_out = PyErr_ExceptionMatches(e.timeout_error);
    Ref timeout_ms(PyLong_FromLong(e.scoring_timeout_ms));
    std::string detail;
    if (timeout_ms) log_pending_exception("log_run_exception", timeout_ms.get(), &detail);
    else log_pending_exception();
    if (timed_out)
      set_json_message(resp, 500, "Scoring timeout after " + std::to_string(e.scoring_timeout_ms) + " ms", true);
    else
      set_json_message(resp, 500, kScoringError, true);
    resp.failure_detail = std::move(detail);
    return;
  }
  resp.has_exec_ms = true;
  resp.exec_ms = std::chrono::duration<double, std::milli>(finished - started).count();
  serialise_output(output.get(), resp);
  if (resp.stream) prime_stream(resp);
}

void close_response(void* closer) {
  if (!closer) return;
  embedded::Gil gil;
  auto* response = static_cast<PyObject*>(closer);
  Ref done(call_server("close_response", response));
  if (!done) log_pending_exception();
  Py_DECREF(response);
}

bool next_chunk(ScoreResponse& response, std::string& chunk, bool* failed) {
  *failed = false;
  if (!response.stream) return false;
  embedded::Gil gil;
  return pull_chunk(static_cast<PyObject*>(response.stream), chunk, failed);
}

void release_holds(std::vector<void*>& holds) {
  if (holds.empty()) return;
  embedded::Gil gil;
  for (void* hold : holds) Py_DECREF(static_cast<PyObject*>(hold));
  holds.clear();
}

void end_stream(ScoreResponse& response) {
  if (!response.stream) return;
  embedded::Gil gil;
  auto* iterator = static_cast<PyObject*>(response.stream);
  response.stream = nullptr;
  close_stream(iterator);
}

}  // namespace bridge
