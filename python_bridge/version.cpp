// The embedded interpreter's version, for the metrics' build info.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bridge.h"

namespace bridge {

std::string python_version() {
  // The library's own answer, not the headers' PY_VERSION: a patch release of libpython can differ.
  std::string version = Py_GetVersion();  // "3.11.2 (main, ...) [GCC 12.2.0]"
  return version.substr(0, version.find(' '));
}

}  // namespace bridge
