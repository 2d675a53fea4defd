// The buffers of one write to a socket, with every length in size_t. A buffer's length never passes
// through a narrower type (uv_buf_init takes an unsigned int: a 5 GiB body would go out as its last
// 1 GiB's worth of bytes and leave the client waiting for the rest), and a body longer than
// kMaxWriteBuf is several buffers.
#pragma once

#include <uv.h>

#include <cstddef>
#include <string_view>
#include <vector>

namespace worker {

// The longest one buffer of a write may be. libuv keeps a buffer's length in 32 bits on some platforms
// (ULONG on Windows, unsigned int in uv_buf_init), and Linux writes at most 2 GiB - 4 KiB per call
// anyway, so nothing is lost by cutting there; a power of two keeps the pieces page-aligned.
constexpr size_t kMaxWriteBuf = size_t{1} << 30;

inline uv_buf_t write_buf(const char* data, size_t len) {
  uv_buf_t buf;
  buf.base = const_cast<char*>(data);  // libuv's buffers are not const; a write only reads them
  buf.len = len;
  return buf;
}

// Appends `bytes` to `bufs` as buffers of at most `max_piece` bytes each (none for empty bytes).
void add_write_bufs(std::vector<uv_buf_t>& bufs, std::string_view bytes, size_t max_piece = kMaxWriteBuf);

// The bytes of all `bufs`.
size_t write_bufs_size(const std::vector<uv_buf_t>& bufs);

// Drops the first `sent` bytes of `bufs`, which the socket took already: whole buffers, then the start of
// the first one it took only part of. `sent` must not exceed write_bufs_size(bufs).
void drop_sent(std::vector<uv_buf_t>& bufs, size_t sent);

}  // namespace worker
