// python_bridge/: boot a real script in this process and score requests through the bridge alone.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../../python_bridge/bridge.h"
#include "../../python_bridge/json_encode.h"

namespace {

bridge::ScoreResponse score(std::string method, std::string body, std::string query = "",
                            std::string content_type = "") {
  static const bridge::HeaderList no_headers;
  bridge::ScoreRequest req;
  req.method = method;
  req.target = "/score";
  req.query = query;
  req.body = body;
  req.content_type = content_type;
  req.headers = &no_headers;
  req.protocol = "HTTP/1.1";
  bridge::ScoreResponse resp;
  bridge::score(req, resp);
  return resp;
}

std::string header(const bridge::ScoreResponse& r, const std::string& name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return "<absent>";
}

}  // namespace

TEST_CASE("the body reaches run() as a str; the result is json.dumps'd") {
  auto r = score("POST", R"({"a": 1})");
  CHECK(r.status == 200);
  CHECK(r.error_message.empty());
  CHECK(r.body == R"({"echo": "{\"a\": 1}", "type": "str"})");
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "x-ms-run-function-failed") == "False");
  CHECK(r.has_exec_ms);
  CHECK(r.exec_ms >= 0);
}

TEST_CASE("GET turns the query into a JSON dict string") {
  auto r = score("GET", "", "a=1&b=x&b=y&d=null");
  CHECK(r.body == R"({"echo": "{\"a\": 1, \"b\": [\"x\", \"y\"], \"d\": null}", "type": "str"})");
}

TEST_CASE("bytes that are not UTF-8 are a 400 quoting Python's codec error") {
  auto r = score("POST", "\xff");
  CHECK(r.status == 400);
  CHECK(r.error_message ==
        "Input cannot be decoded as UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte");
  CHECK_FALSE(r.run_function_failed);
}

TEST_CASE("form posts reach run() as an empty string") {
  auto r = score("POST", "a=1", "", "application/x-www-form-urlencoded");
  CHECK(r.body == R"({"echo": "", "type": "str"})");
}

TEST_CASE("run() raising is the scoring-script 500, failed True, no exec time") {
  auto r = score("POST", "raise");
  CHECK(r.status == 500);
  CHECK(r.error_message == "An unexpected error occurred in scoring script. Check the logs for more info.");
  CHECK(r.run_function_failed);
  CHECK_FALSE(r.has_exec_ms);
}

TEST_CASE("a TimeoutError from run() is reported as the scoring timeout") {
  auto r = score("POST", "timeout");
  CHECK(r.status == 500);
  CHECK(r.error_message == "Scoring timeout after 3600000 ms");
  CHECK(r.run_function_failed);
}

TEST_CASE("a result json.dumps cannot encode is the internal-error 500, failed False") {
  auto r = score("POST", "bytes");
  CHECK(r.status == 500);
  CHECK(r.error_message == "An unexpected internal error occurred. Check the logs for more info.");
  CHECK_FALSE(r.run_function_failed);
  CHECK_FALSE(r.has_exec_ms);
}

TEST_CASE("None is {}; a Response object passes through with its status and headers") {
  CHECK(score("POST", "none").body == "{}");
  auto r = score("POST", "response");
  CHECK(r.status == 299);
  CHECK(r.reason == "CUSTOM");
  CHECK(r.body == "made");
  CHECK(header(r, "X-A") == "1");
}

TEST_CASE("a generator body is streamed chunk by chunk") {
  auto r = score("POST", "stream");
  REQUIRE(r.stream != nullptr);
  CHECK(r.streamed);
  CHECK(r.body == "a");  // the first chunk is taken before anything is sent
  std::string chunk, all = r.body;
  bool failed = false;
  int chunks = 1;
  while (bridge::next_chunk(r, chunk, &failed)) {
    all += chunk;
    ++chunks;
  }
  bridge::end_stream(r);
  CHECK_FALSE(failed);
  CHECK(chunks == 3);  // the empty item is skipped: it would end a chunked body
  CHECK(all == "abc");
}

TEST_CASE("a body that fails before its first chunk is a JSON 500, not a cut stream") {
  auto r = score("POST", "stream_fails");
  CHECK(r.stream == nullptr);
  CHECK_FALSE(r.streamed);
  CHECK(r.status == 500);
  CHECK(r.error_message == "An unexpected internal error occurred. Check the logs for more info.");
  CHECK_FALSE(r.run_function_failed);
}

TEST_CASE("an empty stream stays a stream, with nothing left to pull (the reference answers it chunked)") {
  auto r = score("POST", "stream_empty");
  CHECK(r.streamed);
  CHECK(r.stream == nullptr);
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  std::string chunk;
  bool failed = false;
  CHECK_FALSE(bridge::next_chunk(r, chunk, &failed));
  CHECK_FALSE(failed);
}

TEST_CASE("a 204 or 304 Response loses the headers Werkzeug removes; its generator is closed, never iterated") {
  auto r = score("POST", "no_content");
  CHECK(r.status == 204);
  CHECK_FALSE(r.streamed);
  CHECK(r.body == "{}");  // for the request's log line; the I/O thread sends no body with a 204
  CHECK(header(r, "Content-Length") == "<absent>");
  CHECK(header(r, "Content-Type") == "application/json");
  auto n = score("POST", "not_modified");
  CHECK(n.status == 304);
  CHECK(n.streamed);  // "N/A" in the log line, as the reference's; nothing to pull
  CHECK(n.stream == nullptr);
  CHECK(n.body.empty());
  CHECK(header(n, "Content-Type") == "<absent>");
  CHECK(header(n, "ETag") == "e");
  CHECK(score("POST", "generator_state").body == R"({"echo": "", "type": "str"})");
}

TEST_CASE("the native encoder writes json.dumps's bytes itself, and declines what json.dumps must decide") {
  bridge::embedded::Gil gil;
  PyObject* json = PyImport_ImportModule("json");
  REQUIRE(json);
  auto check = [&](const char* expression, bool native) {
    PyObject* value = PyRun_String(expression, Py_eval_input, PyEval_GetBuiltins(), nullptr);
    REQUIRE(value);
    std::string out = "prefix:";
    bool encoded = bridge::encode_json(value, out);
    CHECK(encoded == native);
    if (native) {
      PyObject* text = PyObject_CallMethod(json, "dumps", "(O)", value);
      REQUIRE(text);
      CHECK(out == std::string("prefix:") + PyUnicode_AsUTF8(text));
      Py_DECREF(text);
    } else {
      CHECK(out == "prefix:");  // nothing half-written
      CHECK_FALSE(PyErr_Occurred());
    }
    Py_DECREF(value);
  };
  check(R"({"a": [1, 2.5, None, True], "\u00e9\x7f": "\U0001F600", 3: float("nan"), 1.5: -float("inf")})", true);
  check("(1, (2, [3]), {})", true);
  check("10**40", true);
  check("b'bytes'", false);
  check("{(1, 2): 'tuple key'}", false);
  check("__import__('collections').OrderedDict(a=1)", false);
  Py_DECREF(json);
}

TEST_CASE("swagger documents exist for every version of an undecorated script") {
  const auto& docs = bridge::swagger_documents();
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].first == "2");
  CHECK(docs[2].first == "3.1");
  CHECK(docs[0].second.rfind("{\"swagger\": \"2.0\"", 0) == 0);
}

TEST_CASE("pymalloc's arenas come mapped whole, not a page fault at a time") {
  // Kernels before 5.14 have no MADV_POPULATE_WRITE (23); the arenas then fault in as before.
  void* probe = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bool can_populate = madvise(probe, 4096, 23) == 0;
  munmap(probe, 4096);
  if (!can_populate) {
    WARN("this kernel cannot populate mappings; nothing to check");
    return;
  }
  PyObjectArenaAllocator arenas;
  PyObject_GetArenaAllocator(&arenas);
  const size_t size = 1 << 20;
  void* arena = arenas.alloc(arenas.ctx, size);
  REQUIRE(arena != nullptr);
  std::vector<unsigned char> resident(size / static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  REQUIRE(mincore(arena, size, resident.data()) == 0);
  size_t pages = 0;
  for (unsigned char r : resident) pages += r & 1;
  CHECK(pages == resident.size());
  arenas.free(arenas.ctx, arena, size);
}

int main(int argc, char* argv[]) {
  const char* script = "/tmp/azmlinfsrv_bridge_test_score.py";
  std::ofstream(script) << R"(
from azureml.contrib.services.aml_response import AMLResponse
state = []
def init():
    pass
def run(data):
    if data == "raise":
        raise ValueError("boom")
    if data == "timeout":
        raise TimeoutError()
    if data == "bytes":
        return b"x"
    if data == "none":
        return None
    if data == "response":
        return AMLResponse("made", "299 CUSTOM", {"X-A": "1"})
    if data == "stream_fails":
        def failing():
            raise RuntimeError("before the first item")
            yield "never"
        return AMLResponse(failing(), 200)
    if data == "stream":
        return AMLResponse((x for x in ["a", "", "b", "c"]), 200)
    if data == "stream_empty":
        return AMLResponse(iter([]), 200)
    if data == "no_content":
        return AMLResponse(None, 204)
    if data == "not_modified":
        def body():
            state.append("iterated")
            yield "x"
        return AMLResponse(body(), 304, {"ETag": "e"})
    if data == "generator_state":
        return {"echo": ",".join(state), "type": "str"}
    return {"echo": data, "type": type(data).__name__}
)";
  setenv("AZUREML_ENTRY_SCRIPT", script, 1);
  setenv("AML_APP_ROOT", "/tmp", 1);
  bridge::BootOptions options;
  options.interpreter = AZMLINFSRV_PYTHON;
  options.package_dir = AZMLINFSRV_SOURCE_PACKAGE_DIR;
  options.claim_error_report = [] { return true; };
  if (bridge::boot(options) != bridge::BootOutcome::ready) {
    fprintf(stderr, "bridge::boot failed: see the log above\n");
    return 1;
  }
  return Catch::Session().run(argc, argv);
}
