#include "write_bufs.h"

#include <algorithm>

namespace worker {

void add_write_bufs(std::vector<uv_buf_t>& bufs, std::string_view bytes, size_t max_piece) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    size_t piece = std::min(left, max_piece);
    bufs.push_back(write_buf(p, piece));
    p += piece;
    left -= piece;
  }
}

size_t write_bufs_size(const std::vector<uv_buf_t>& bufs) {
  size_t total = 0;
  for (const uv_buf_t& buf : bufs) total += buf.len;
  return total;
}

void drop_sent(std::vector<uv_buf_t>& bufs, size_t sent) {
  size_t whole = 0;
  while (whole < bufs.size() && sent >= bufs[whole].len) sent -= bufs[whole++].len;
  bufs.erase(bufs.begin(), bufs.begin() + static_cast<std::ptrdiff_t>(whole));
  if (sent > 0 && !bufs.empty()) {
    bufs.front().base += sent;
    bufs.front().len -= sent;
  }
}

}  // namespace worker
