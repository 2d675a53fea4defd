// Starting CPython inside a freshly forked worker and booting the entry script through _server.boot().
#include <pybind11/embed.h>

#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "../log/log.h"
#include "embedded.h"

namespace py = pybind11;

namespace bridge {

namespace embedded {

Entry& entry() {
  static Entry* e = new Entry;  // never destroyed: Python objects must not outlive the interpreter
  return *e;
}
}  // namespace embedded

namespace {

void log_python_error(const char* what) {
  // Shown when our own package cannot even be imported: an install problem, not a script problem.
  std::string text = what;
  if (PyErr_Occurred()) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value) {
      if (PyObject* s = PyObject_Str(value)) {
        if (const char* c = PyUnicode_AsUTF8(s)) text += std::string(": ") + c;
        Py_DECREF(s);
      }
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Clear();
  }
  logline::write(logline::Stream::out, logline::Level::critical, "azmlinfsrv", text);
}

void boot_error(const std::string& message) {
  logline::write(logline::Stream::out, logline::Level::critical, "azmlinfsrv", message);
}

// The interpreter whose environment the worker takes on (see BootOptions), or "" after an error.
std::string choose_interpreter(const BootOptions& options) {
  namespace fs = std::filesystem;
  std::string chosen = options.interpreter;
  std::string why = "--python";
  if (chosen.empty()) {
    if (const char* venv = getenv("VIRTUAL_ENV"); venv && *venv) {
      chosen = (fs::path(venv) / "bin" / "python").string();
      why = "VIRTUAL_ENV";
    } else {
      return options.default_interpreter;
    }
  }
  std::error_code ec;
  if (!fs::exists(chosen, ec)) {
    boot_error(fmt::format("The Python interpreter {} (from {}) does not exist. Point {} at an existing python "
                           "{}.{} interpreter or virtual environment.",
                           chosen, why, why, PY_MAJOR_VERSION, PY_MINOR_VERSION));
    return "";
  }
  // A virtual environment says its version in pyvenv.cfg; a plain interpreter in its real file name.
  std::string version;
  for (fs::path cfg : {fs::path(chosen).parent_path() / "pyvenv.cfg", fs::path(chosen).parent_path().parent_path() / "pyvenv.cfg"}) {
    std::ifstream in(cfg);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("version", 0) == 0 && line.find('=') != std::string::npos) {
        version = line.substr(line.find('=') + 1);
        version.erase(0, version.find_first_not_of(' '));
        break;
      }
    }
    if (!version.empty()) break;
  }
  if (version.empty()) {
    std::string name = fs::canonical(chosen, ec).filename().string();  // python3.11
    if (name.rfind("python", 0) == 0) version = name.substr(6);
  }
  std::string embedded = fmt::format("{}.{}", PY_MAJOR_VERSION, PY_MINOR_VERSION);
  if (version != embedded && version.rfind(embedded + ".", 0) != 0) {
    boot_error(fmt::format("The Python interpreter {} (from {}) is Python {}, but azmlinfsrv embeds Python {}. Use "
                           "a Python {} environment, or rebuild azmlinfsrv with -Dpython={}.",
                           chosen, why, version.empty() ? "of an unknown version" : version, embedded, embedded,
                           chosen));
    return "";
  }
  return chosen;
}

// A page fault costs about 15 µs in the VMs this runs in (Firecracker, measured), and a worker's start
// took a thousand of them, a third of its start-up; MADV_POPULATE_WRITE maps a range in one call for about
// a tenth of that per page. Kernels before 5.14 refuse it (EINVAL) and the pages fault in as before.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

// pymalloc's arenas (1 MiB each), mapped whole: the interpreter fills them pool after pool.
void* populated_arena(void*, size_t size) {
  void* arena = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (arena == MAP_FAILED) return nullptr;
  madvise(arena, size, MADV_POPULATE_WRITE);
  return arena;
}

void unmap_arena(void*, void* arena, size_t size) { munmap(arena, size); }

// The program's writable data and bss after RELRO: with libpython linked in, the interpreter's static
// types and frozen code objects, which initialisation writes (reference counts) page after page.
int populate_writable_data(dl_phdr_info* program, size_t, void*) {
  uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t relro_end = 0;
  for (int i = 0; i < program->dlpi_phnum; ++i)
    if (program->dlpi_phdr[i].p_type == PT_GNU_RELRO)
      relro_end = program->dlpi_addr + program->dlpi_phdr[i].p_vaddr + program->dlpi_phdr[i].p_memsz;
  for (int i = 0; i < program->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = program->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || !(segment.p_flags & PF_W)) continue;
    uintptr_t start = std::max<uintptr_t>(program->dlpi_addr + segment.p_vaddr, relro_end);
    start = (start + page - 1) & ~(page - 1);
    uintptr_t end = (program->dlpi_addr + segment.p_vaddr + segment.p_memsz + page - 1) & ~(page - 1);
    if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE);
  }
  return 1;  // the program comes first; shared libraries are left alone
}

// print() writes its text and its end apart, and unbuffered stdio passes each piece on at once, so
// workers writing together mixed their lines ("Initializing loggerInitializing logger"). Holding a
// line until its newline makes each line one write (a pipe never splits a write of up to PIPE_BUF
// bytes, nor a file opened for append any write), while a whole line still goes out before the next
// statement runs.
void keep_lines_whole() {
  PyRun_SimpleString(
      "import sys\n"
      "for _stream in (sys.stdout, sys.stderr):\n"
      "    if _stream is not None:\n"
      "        _stream.reconfigure(line_buffering=True, write_through=False)\n"
      "del _stream\n");
}

bool start_interpreter(const BootOptions& options) {
  dl_iterate_phdr(populate_writable_data, nullptr);
  PyObjectArenaAllocator arenas{nullptr, populated_arena, unmap_arena};
  PyObject_SetArenaAllocator(&arenas);
  std::string interpreter = choose_interpreter(options);
  if (interpreter.empty()) return false;
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // Unbuffered stdio: a print just before a crash still reaches the log. Lines are then made whole
  // below (keep_lines_whole), since several workers share the same stdout and stderr.
  config.buffered_stdio = 0;
  config.parse_argv = 0;
  // With a debugger attached (AZUREML_DEBUG_PORT), breakpoints in the standard library need its real
  // sources rather than frozen modules, as debugpy warns.
  if (getenv("AZUREML_DEBUG_PORT")) config.use_frozen_modules = 0;
  // program_name decides sys.prefix: a virtual environment's python finds its pyvenv.cfg from here.
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, interpreter.c_str());
  if (PyStatus_Exception(status)) {
    PyConfig_Clear(&config);
    boot_error("Cannot configure the embedded Python for " + interpreter);
    return false;
  }
  const char* argv[] = {"azmlinfsrv"};
  try {
    py::initialize_interpreter(&config, 1, argv, false);
  } catch (const std::exception& e) {
    logline::write(logline::Stream::out, logline::Level::critical, "azmlinfsrv",
                   std::string("Cannot start the embedded Python: ") + e.what() +
                       ". Check that python3 (the interpreter named by -Dpython) is installed.");
    return false;
  }
  keep_lines_whole();
  return true;
}

std::string& load_failure_body() {
  static std::string body;
  return body;
}

// What serving needs from boot()'s Entry, kept where the hot path reaches it without lookups.
void keep_entry(py::module_& server, py::object& loaded, const BootOptions& options) {
  embedded::Entry& e = embedded::entry();
  // _raise_timeout asks this whether the run() in progress is past its deadline; a yes also tells the
  // I/O thread that run() is unwinding, not stuck in C.
  server.attr("_native_deadline_passed") = py::cpp_function([] { return embedded::scoring_deadline_passed(); });
  py::module_ requests = py::module_::import("azureml_inference_server_http._requests");
  e.loaded = py::object(loaded).release().ptr();
  e.run = py::object(loaded.attr("run")).release().ptr();
  e.input_name = py::object(loaded.attr("input_name")).release().ptr();
  e.wants_headers = loaded.attr("wants_headers").cast<bool>();
  e.scoring_timeout_ms = loaded.attr("scoring_timeout_ms").cast<long>();
  if (py::object origins = loaded.attr("cors_origins"); !origins.is_none()) e.cors_origins = origins.cast<std::string>();
  std::string mode = loaded.attr("mode").cast<std::string>();
  e.mode = mode == "raw" ? InputMode::raw : mode == "object" ? InputMode::object : InputMode::json_string;
  e.is_response = py::object(requests.attr("is_response")).release().ptr();
  for (auto item : py::dict(loaded.attr("swaggers")))
    e.swaggers.emplace_back(item.first.cast<std::string>(), item.second.cast<std::string>());
  e.empty_tuple = PyTuple_New(0);
  if (const char* format = getenv("AZMLINFSRV_LOG_FORMAT"); format && std::string_view(format) == "json")
    e.logging_module = py::module_::import("azureml_inference_server_http._logging").release().ptr();
  e.timeout_error = PyExc_TimeoutError;
  e.client_error = py::object(requests.attr("ClientError")).release().ptr();
  if (options.failure_detail) requests.attr("want_failure_detail") = true;
  if (options.post_mortem) requests.attr("post_mortem") = true;
  e.rare_paths = requests.release().ptr();
}

}  // namespace

BootOutcome boot(const BootOptions& options) {
  if (!start_interpreter(options)) return BootOutcome::failed;
  embedded::Entry& e = embedded::entry();
  BootOutcome outcome = BootOutcome::ready;
  try {  // every Python object here is released before the GIL is
    py::module_ sys = py::module_::import("sys");
    sys.attr("path").attr("insert")(0, options.package_dir);
    py::module_ server = py::module_::import("azureml_inference_server_http._server");
    if (options.replay) py::module_::import("azureml_inference_server_http._replay").attr("install")();
    auto claim = options.claim_error_report;
    py::object loaded = server.attr("boot")(py::cpp_function([claim] { return claim ? claim() : true; }),
                                            options.keep_load_failure);
    if (loaded.is_none()) {
      outcome = BootOutcome::failed;
    } else if (!py::hasattr(loaded, "run")) {  // a _failure.LoadFailure
      load_failure_body() = loaded.attr("body").cast<std::string>();
      outcome = BootOutcome::load_failed;
    } else {
      keep_entry(server, loaded, options);
    }
  } catch (py::error_already_set& err) {
    err.restore();
    log_python_error("The server's Python package failed to load");
    e.released = PyEval_SaveThread();
    return BootOutcome::failed;
  }
  e.released = PyEval_SaveThread();
  return outcome;
}

const std::string& load_failure() { return load_failure_body(); }

InputMode input_mode() { return embedded::entry().mode; }

long scoring_timeout_ms() { return embedded::entry().scoring_timeout_ms; }

const std::optional<std::string>& cors_origins() { return embedded::entry().cors_origins; }

const std::vector<std::pair<std::string, std::string>>& swagger_documents() { return embedded::entry().swaggers; }

void shutdown() {
  embedded::Entry& e = embedded::entry();
  if (!e.released) return;
  PyEval_RestoreThread(e.released);
  e.released = nullptr;
  // Runs atexit hooks and flushes stdio; the interpreter itself is left to process exit.
  PyRun_SimpleString("import atexit, sys\natexit._run_exitfuncs()\nsys.stdout.flush()\nsys.stderr.flush()\n");
}

}  // namespace bridge
