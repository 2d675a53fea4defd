// The native JSON encoder for run()'s results: byte for byte what json.dumps(value) writes with its
// defaults (", " and ": " separators, ensure_ascii, allow_nan, float repr, insertion order). It covers
// the types json.dumps handles itself; for anything else — and for the rare shapes where matching
// json.dumps's exact behaviour natively is not worth it (subclassed containers, very deep nesting) — it
// declines, and the caller uses json.dumps, so errors and their messages stay Python's own.
#include "json_encode.h"

#include "../base/base.h"

#include <cmath>

namespace bridge {

namespace {

constexpr int kMaxDepth = 64;  // deeper: json.dumps decides (and detects cycles)

// json's py_encode_basestring_ascii: ' '..'~' as they are (but '"' and '\\'), everything else escaped.
void append_string(std::string& out, PyObject* s) {
  Py_ssize_t n = PyUnicode_GET_LENGTH(s);
  int kind = PyUnicode_KIND(s);
  const void* data = PyUnicode_DATA(s);
  // A long string is most of the text: room for it and its quotes at once, so that the closing quote does
  // not double the buffer and copy it (a 200 MB str would cost 600 MB for a moment).
  if (n >= 64 * 1024) out.reserve(out.size() + static_cast<size_t>(n) + 2);
  out.push_back('"');
  if (kind == PyUnicode_1BYTE_KIND && PyUnicode_IS_ASCII(s)) {
    // The common case, plain ASCII: copy runs of printable characters whole.
    const char* p = static_cast<const char*>(data);
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < n; ++i) {
      auto c = static_cast<unsigned char>(p[i]);
      if (base::json_plain_ascii(c)) continue;
      out.append(p + start, static_cast<size_t>(i - start));
      start = i + 1;
      base::append_json_escape(out, c);
    }
    out.append(p + start, static_cast<size_t>(n - start));
  } else {
    for (Py_ssize_t i = 0; i < n; ++i) {
      Py_UCS4 c = PyUnicode_READ(kind, data, i);
      if (base::json_plain_ascii(c)) out.push_back(static_cast<char>(c));
      else base::append_json_escape(out, c);
    }
  }
  out.push_back('"');
}

// float.__repr__, with json's names for the non-finite values.
bool append_float(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
    return true;
  }
  if (std::isinf(v)) {
    out.append(v > 0 ? "Infinity" : "-Infinity");
    return true;
  }
  char* repr = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);
  if (!repr) return false;
  out.append(repr);
  PyMem_Free(repr);
  return true;
}

// int.__repr__ (also for int subclasses such as IntEnum, as json.dumps does).
bool append_int(std::string& out, PyObject* o) {
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
  if (!overflow) {
    if (v == -1 && PyErr_Occurred()) return false;
    char buf[24];
    int len = snprintf(buf, sizeof buf, "%lld", v);
    out.append(buf, static_cast<size_t>(len));
    return true;
  }
  PyObject* text = PyLong_Type.tp_repr(o);
  if (!text) return false;
  Py_ssize_t size = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size);
  if (utf8) out.append(utf8, static_cast<size_t>(size));
  Py_DECREF(text);
  return utf8 != nullptr;
}

bool append_value(std::string& out, PyObject* o, int depth);

// A dict key as json.dumps converts it: str as is; float, int, bool, None to their JSON text.
bool append_key(std::string& out, PyObject* key) {
  if (PyUnicode_Check(key)) {
    append_string(out, key);
    return true;
  }
  out.push_back('"');
  bool ok = true;
  if (key == Py_True) out.append("true");
  else if (key == Py_False) out.append("false");
  else if (key == Py_None) out.append("null");
  else if (PyFloat_Check(key)) ok = append_float(out, PyFloat_AS_DOUBLE(key));
  else if (PyLong_Check(key)) ok = append_int(out, key);
  else ok = false;  // json.dumps raises TypeError (or skips with skipkeys): its call
  out.push_back('"');
  return ok;
}

bool append_value(std::string& out, PyObject* o, int depth) {
  if (o == Py_None) {
    out.append("null");
    return true;
  }
  if (o == Py_True) {
    out.append("true");
    return true;
  }
  if (o == Py_False) {
    out.append("false");
    return true;
  }
  if (PyUnicode_Check(o)) {
    append_string(out, o);
    return true;
  }
  if (PyLong_Check(o)) return append_int(out, o);
  if (PyFloat_Check(o)) return append_float(out, PyFloat_AS_DOUBLE(o));
  if (depth >= kMaxDepth) return false;
  if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
    PyObject** items = PySequence_Fast_ITEMS(o);
    out.push_back('[');
    for (Py_ssize_t i = 0; i < n; ++i) {
      if (i) out.append(", ");
      // A list can change while encoding only through __repr__-free paths we never call; still, hold
      // the item, as json's encoder does.
      PyObject* item = items[i];
      Py_INCREF(item);
      bool ok = append_value(out, item, depth + 1);
      Py_DECREF(item);
      if (!ok) return false;
      if (PyList_CheckExact(o) && PyList_GET_SIZE(o) != n) return false;
    }
    out.push_back(']');
    return true;
  }
  if (PyDict_CheckExact(o)) {
    out.push_back('{');
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    bool first = true;
    while (PyDict_Next(o, &pos, &key, &value)) {
      if (!first) out.append(", ");
      first = false;
      Py_INCREF(key);
      Py_INCREF(value);
      bool ok = append_key(out, key);
      if (ok) {
        out.append(": ");
        ok = append_value(out, value, depth + 1);
      }
      Py_DECREF(key);
      Py_DECREF(value);
      if (!ok) return false;
    }
    out.push_back('}');
    return true;
  }
  return false;  // anything else: json.dumps decides (default= hooks, errors, subclasses)
}

}  // namespace

bool encode_json(PyObject* value, std::string& out) {
  size_t mark = out.size();
  if (append_value(out, value, 0)) return true;
  out.resize(mark);
  PyErr_Clear();
  return false;
}

}  // namespace bridge
