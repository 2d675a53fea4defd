// The capture file format (capture.h): written with the server's JSON string escaping, read with the
// small JSON reader below (what a capture holds: objects, arrays, strings, numbers), bodies that are not
// UTF-8 in base64.
#include "capture.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "../base/base.h"
#include "../log/log.h"
#include "jobs.h"

namespace worker {

namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool is_utf8(std::string_view s) {
  constexpr size_t kBad = SIZE_MAX;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : kBad;
    if (extra == kBad || extra >= s.size() - i) return false;
    uint32_t cp = extra == 0 ? c : c & (0x3fu >> extra);
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 (Python's strict decoder agrees).
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return false;
    i += extra + 1;
  }
  return true;
}

void add_string(std::string& out, std::string_view name, std::string_view value) {
  fmt::format_to(std::back_inserter(out), "\"{}\": \"", name);
  base::append_json_string(out, value, base::JsonText::keep_utf8);
  out += '"';
}

// ---- reading JSON -------------------------------------------------------------------------------------

struct Json {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  std::string text;  // a string's value, UTF-8
  std::vector<Json> items;      // an array's; an object's values
  std::vector<std::string> keys;  // an object's, in the order of its values in items

  bool is_string() const { return kind == Kind::string; }
  bool is_array() const { return kind == Kind::array; }
  bool is_object() const { return kind == Kind::object; }
};

// RFC 8259, strictly: one value, whitespace around it, nesting at most 64 deep.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  bool read(Json& out) {
    if (!value(out, 0)) return false;
    skip_space();
    return i_ == s_.size();
  }

 private:
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  bool value(Json& out, int depth) {
    if (depth > 64) return false;
    skip_space();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      out.kind = Json::Kind::string;
      return string(out.text);
    }
    if (c == 't' || c == 'f') {
      out.kind = Json::Kind::boolean;
      return literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') return literal("null");
    return number(out);
  }

  bool number(Json& out) {
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    size_t digits = i_;
    while (i_ < s_.size() && ((s_[i_] >= '0' && s_[i_] <= '9') || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' ||
                              ((s_[i_] == '+' || s_[i_] == '-') && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E'))))
      ++i_;
    if (i_ == digits || s_[digits] < '0' || s_[digits] > '9') return false;
    out.kind = Json::Kind::number;
    out.text = std::string(s_.substr(start, i_ - start));
    return true;
  }

  bool hex4(uint32_t& cp) {
    if (i_ + 4 > s_.size()) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s_[i_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') cp |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') cp |= static_cast<uint32_t>(h - 'A' + 10);
      else return false;
    }
    return true;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool string(std::string& out) {
    ++i_;  // the opening quote
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xd800 && cp <= 0xdbff && s_.substr(i_, 2) == "\\u") {  // a surrogate pair
            size_t back = i_;
            i_ += 2;
            uint32_t low;
            if (hex4(low) && low >= 0xdc00 && low <= 0xdfff) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            else i_ = back;
          }
          append_utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  bool array(Json& out, int depth) {
    ++i_;
    out.kind = Json::Kind::array;
    skip_space();
    if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
    for (;;) {
      out.items.emplace_back();
      if (!value(out.items.back(), depth + 1)) return false;
      skip_space();
      if (i_ >= s_.size()) return false;
      char c = s_[i_++];
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

  bool object(Json& out, int depth) {
    ++i_;
    out.kind = Json::Kind::object;
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
    for (;;) {
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '"') return false;
      out.keys.emplace_back();
      if (!string(out.keys.back())) return false;
      skip_space();
      if (i_ >= s_.size() || s_[i_++] != ':') return false;
      out.items.emplace_back();
      if (!value(out.items.back(), depth + 1)) return false;
      skip_space();
      if (i_ >= s_.size()) return false;
      char c = s_[i_++];
      if (c == '}') return true;
      if (c != ',') return false;
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

// An object read from text; nullopt when the text is not one JSON object.
std::optional<Json> read_object(std::string_view text) {
  Json doc;
  if (!JsonReader(text).read(doc) || !doc.is_object()) return std::nullopt;
  return doc;
}

// The last member of that name, as Python's json.loads keeps the last of duplicates.
const Json* member(const Json& object, std::string_view name) {
  const Json* found = nullptr;
  for (size_t k = 0; k < object.keys.size(); ++k)
    if (object.keys[k] == name) found = &object.items[k];
  return found;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                 (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) | static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kBase64[(n >> shift) & 63];
  }
  if (size_t left = bytes.size() - i) {
    uint32_t n = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (left == 2) n |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += left == 2 ? kBase64[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  uint32_t n = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == ' ') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding) return std::nullopt;  // data after the padding
    const char* at = std::char_traits<char>::find(kBase64, 64, c);
    if (!at) return std::nullopt;
    n = (n << 6) | static_cast<uint32_t>(at - kBase64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((n >> bits) & 0xff);
    }
  }
  if (padding > 2 || bits >= 6) return std::nullopt;
  return out;
}

std::string capture_json(const CapturedRequest& r) {
  std::string out = "{";
  add_string(out, "format", kCaptureFormat);
  out += ",\n ";
  add_string(out, "time", r.time);
  out += ", ";
  add_string(out, "request_id", r.request_id);
  out += ", ";
  add_string(out, "failure", r.failure);
  fmt::format_to(std::back_inserter(out), ", \"status\": {},\n ", r.status);
  add_string(out, "method", r.method);
  out += ", ";
  add_string(out, "path", r.path);
  out += ", ";
  add_string(out, "query", r.query);
  out += ",\n \"headers\": [";
  for (size_t i = 0; i < r.headers.size(); ++i) {
    out += i ? ", [\"" : "[\"";
    base::append_json_string(out, r.headers[i].first, base::JsonText::keep_utf8);
    out += "\", \"";
    base::append_json_string(out, r.headers[i].second, base::JsonText::keep_utf8);
    out += "\"]";
  }
  out += "],\n ";
  if (is_utf8(r.body)) add_string(out, "body", r.body);
  else add_string(out, "body_base64", base64_encode(r.body));
  out += ",\n ";
  add_string(out, "traceback", r.traceback);
  out += "}\n";
  return out;
}

ReplayInput read_replay_input(std::string_view text) {
  ReplayInput input;
  std::optional<Json> parsed = read_object(text);
  const Json* format = parsed ? member(*parsed, "format") : nullptr;
  if (!format || !format->is_string() || format->text != kCaptureFormat) {
    input.request.method = "POST";
    input.request.path = "/score";
    input.request.headers = {{"Content-Type", "application/json"}};
    input.request.body = std::string(text);
    return input;
  }
  input.is_capture = true;
  const Json& doc = *parsed;
  CapturedRequest& r = input.request;
  auto text_field = [&](const char* name, std::string& into, bool required) {
    const Json* v = member(doc, name);
    if (!v) {
      if (required && input.error.empty()) input.error = fmt::format("the field \"{}\" is missing", name);
      return;
    }
    if (!v->is_string()) {
      if (input.error.empty()) input.error = fmt::format("the field \"{}\" must be a string", name);
      return;
    }
    into = v->text;
  };
  text_field("method", r.method, true);
  text_field("path", r.path, true);
  text_field("query", r.query, false);
  text_field("request_id", r.request_id, false);
  text_field("time", r.time, false);
  text_field("failure", r.failure, false);
  text_field("traceback", r.traceback, false);
  if (input.error.empty() && (r.path.empty() || r.path[0] != '/'))
    input.error = "the field \"path\" must start with '/' (\"/score\")";
  if (const Json* headers = member(doc, "headers")) {
    bool pairs = headers->is_array();
    for (size_t k = 0; pairs && k < headers->items.size(); ++k) {
      const Json& pair = headers->items[k];
      if (!pair.is_array() || pair.items.size() != 2 || !pair.items[0].is_string() || !pair.items[1].is_string()) {
        pairs = false;
        break;
      }
      r.headers.emplace_back(pair.items[0].text, pair.items[1].text);
    }
    if (!pairs && input.error.empty())
      input.error = "the field \"headers\" must be a list of [name, value] pairs of strings";
  }
  const Json* body = member(doc, "body");
  const Json* body64 = member(doc, "body_base64");
  if (body && body64) {
    if (input.error.empty()) input.error = "the fields \"body\" and \"body_base64\" are both there; keep one";
  } else if (body) {
    if (body->is_string()) r.body = body->text;
    else if (input.error.empty()) input.error = "the field \"body\" must be a string";
  } else if (body64) {
    std::optional<std::string> bytes = body64->is_string() ? base64_decode(body64->text) : std::nullopt;
    if (bytes) r.body = std::move(*bytes);
    else if (input.error.empty()) input.error = "the field \"body_base64\" must be a base64 string";
  }
  return input;
}

std::string capture_file_name(std::string_view time, std::string_view request_id) {
  std::string name;
  for (char c : time)
    if (c != '-' && c != ':') name += c;
  std::string id;
  for (char c : request_id.substr(0, 64))
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') id += c;
  if (!id.empty()) name += "-" + id;
  return name + ".json";
}

// ---- the folder ----------------------------------------------------------------------------------------

namespace {

std::string saved_message(const std::string& path) {
  const char* script = getenv("AZUREML_ENTRY_SCRIPT");
  return fmt::format("Saved the failed request to {}; run it again with: azmlinfsrv --entry_script {} --replay {} "
                     "(--pdb to stop where it fails)",
                     path, script ? script : "score.py", path);
}

bool is_capture_name(std::string_view name) {
  // 20261203T164512.123Z...json
  return name.size() > 25 && name[8] == 'T' && name[15] == '.' && name[19] == 'Z' &&
         name.substr(name.size() - 5) == ".json" && std::all_of(name.begin(), name.begin() + 8, ::isdigit);
}

}  // namespace

void prune_captures(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d))
    if (is_capture_name(e->d_name)) names.emplace_back(e->d_name);
  closedir(d);
  if (names.size() <= kCaptureKeep) return;
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i + kCaptureKeep < names.size(); ++i) unlink((dir + "/" + names[i]).c_str());
}

namespace {

// A temporary name no other worker uses at the same time.
std::string temporary_name(const std::string& dir, std::string_view what) {
  return fmt::format("{}/.{}.{}.tmp", dir, what, getpid());
}

}  // namespace

std::string capture_time_now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, ts.tv_nsec / 1000000);
}

CapturedRequest captured_request(const Job& job, std::string_view failure, int status) {
  CapturedRequest c;
  c.time = capture_time_now();
  c.request_id = job.ids.request_id;
  c.failure = failure;
  c.status = status;
  c.method = job.request.method;
  c.path = job.request.path();
  c.query = job.request.query();
  for (const http::Header& h : job.request.headers) c.headers.emplace_back(h.name, h.value);
  c.body = job.request.body;
  return c;
}

std::string traceback_of(std::string_view failure_detail) {
  std::optional<Json> detail = read_object(failure_detail);
  const Json* tb = detail ? member(*detail, "traceback") : nullptr;
  return tb && tb->is_string() ? tb->text : std::string();
}

void save_capture(const std::string& dir, const CapturedRequest& request) {
  std::string name = capture_file_name(request.time, request.request_id);
  std::string path = dir + "/" + name;
  std::string temporary = temporary_name(dir, "capture");
  std::string text = capture_json(request);
  FILE* f = fopen(temporary.c_str(), "wb");
  bool written = f && fwrite(text.data(), 1, text.size(), f) == text.size();
  if (f && fclose(f) != 0) written = false;
  if (!written || rename(temporary.c_str(), path.c_str()) != 0) {
    std::string why = strerror(errno);
    unlink(temporary.c_str());
    logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv",
                   fmt::format("Could not save the failed request in {} (--capture): {}. Check that the folder "
                               "exists and is writable, and that the disk has room.",
                               dir, why),
                   request.request_id);
    return;
  }
  std::string latest_temporary = temporary_name(dir, "latest");
  unlink(latest_temporary.c_str());
  if (symlink(name.c_str(), latest_temporary.c_str()) == 0) rename(latest_temporary.c_str(), (dir + "/latest.json").c_str());
  prune_captures(dir);
  logline::write(logline::Stream::out, logline::Level::error, "azmlinfsrv", saved_message(path), request.request_id);
}

void prepare_crash_capture(const std::string& dir, const CapturedRequest& request, PreparedCapture& into) {
  std::string text = capture_json(request);  // its traceback is empty: the file ends "traceback": ""}\n
  size_t end = text.rfind("\"}");
  into.prefix = text.substr(0, end);
  into.suffix = text.substr(end);
  into.link_target = capture_file_name(request.time, request.request_id);
  into.path = dir + "/" + into.link_target;
  into.temporary = temporary_name(dir, "crash");
  into.latest_temporary = temporary_name(dir, "crash-latest");
  into.latest = dir + "/latest.json";
  into.log_line = logline::render(logline::Level::error, "azmlinfsrv", saved_message(into.path), request.request_id);
}

void write_prepared_capture(const PreparedCapture& capture, const char* traceback_json, size_t size) {
  int fd = open(capture.temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  bool written = true;
  for (auto [data, n] : {std::pair{capture.prefix.data(), capture.prefix.size()}, std::pair{traceback_json, size},
                         std::pair{capture.suffix.data(), capture.suffix.size()}}) {
    while (written && n > 0) {
      ssize_t w = write(fd, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) written = false;
      else data += w, n -= static_cast<size_t>(w);
    }
  }
  close(fd);
  if (!written || rename(capture.temporary.c_str(), capture.path.c_str()) != 0) {
    unlink(capture.temporary.c_str());
    return;
  }
  unlink(capture.latest_temporary.c_str());
  if (symlink(capture.link_target.c_str(), capture.latest_temporary.c_str()) == 0)
    rename(capture.latest_temporary.c_str(), capture.latest.c_str());
  for (size_t sent = 0; sent < capture.log_line.size();) {
    ssize_t w = write(STDOUT_FILENO, capture.log_line.data() + sent, capture.log_line.size() - sent);
    if (w <= 0) break;
    sent += static_cast<size_t>(w);
  }
}

}  // namespace worker
