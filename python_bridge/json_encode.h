// Internal to python_bridge/: the native encoder for run()'s results.
#pragma once

#include "embedded.h"

namespace bridge {

// Appends json.dumps(value)'s exact text to out and returns true; false (out unchanged, no Python
// error pending) when json.dumps itself must decide: types it does not know, subclassed containers,
// very deep nesting. Needs the GIL.
bool encode_json(PyObject* value, std::string& out);

}  // namespace bridge
