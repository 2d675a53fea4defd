// worker/write_bufs.h: the buffers of one write, sized in size_t. Bodies over 4 GiB used to be truncated
// (a length cast to 32 bits on its way into uv_buf_init). A black-box test would have to make and send a
// 4 GiB answer, too heavy for the suite; the arithmetic is what broke, so it is tested here, over an
// address range that is reserved but never touched (PROT_NONE: no memory is used, and nothing reads it).
#include <sys/mman.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "../../worker/write_bufs.h"

using worker::add_write_bufs;
using worker::drop_sent;
using worker::kMaxWriteBuf;
using worker::write_bufs_size;

namespace {

constexpr size_t kGiB = size_t{1} << 30;

// `size` bytes of address space: a string_view over it is only ever measured and cut, never read.
struct Reserved {
  explicit Reserved(size_t size) : size(size) {
    void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(p != MAP_FAILED);
    base = static_cast<char*>(p);
  }
  ~Reserved() { munmap(base, size); }
  std::string_view view() const { return {base, size}; }
  char* base;
  size_t size;
};

}  // namespace

TEST_CASE("a buffer's length is never cut to 32 bits") {
  static_assert(kMaxWriteBuf <= UINT32_MAX, "every buffer must fit a 32-bit length");
  Reserved body(5 * kGiB + 7);
  uv_buf_t whole = worker::write_buf(body.base, body.size);
  CHECK(whole.len == 5 * kGiB + 7);
}

TEST_CASE("a body over 4 GiB becomes several buffers that add up to all of it") {
  for (size_t size : {4 * kGiB, 4 * kGiB + 1, size_t{UINT32_MAX} + 1, 5 * kGiB + 7, 9 * kGiB - 3}) {
    Reserved body(size);
    std::vector<uv_buf_t> bufs;
    add_write_bufs(bufs, body.view());
    REQUIRE(write_bufs_size(bufs) == size);
    CHECK(bufs.size() == (size + kMaxWriteBuf - 1) / kMaxWriteBuf);
    const char* next = body.base;
    for (const uv_buf_t& buf : bufs) {  // in order, contiguous, none empty or over the limit
      CHECK(buf.base == next);
      CHECK(buf.len > 0);
      CHECK(buf.len <= kMaxWriteBuf);
      next += buf.len;
    }
    CHECK(next == body.base + size);
  }
}

TEST_CASE("a head, a body over 4 GiB and a trailer: what is left after a partial write") {
  Reserved body(6 * kGiB + 5);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 6442450949\r\n\r\n";
  std::vector<uv_buf_t> bufs;
  add_write_bufs(bufs, head);
  add_write_bufs(bufs, body.view());
  add_write_bufs(bufs, "\r\n");
  size_t total = head.size() + body.size + 2;
  REQUIRE(write_bufs_size(bufs) == total);

  SECTION("past the head and 4.5 GiB of the body") {
    size_t sent = head.size() + 4 * kGiB + kGiB / 2;
    drop_sent(bufs, sent);
    CHECK(write_bufs_size(bufs) == total - sent);
    CHECK(bufs.front().base == body.base + 4 * kGiB + kGiB / 2);
    CHECK(bufs.front().len == kGiB / 2);
    CHECK(std::string_view(bufs.back().base, bufs.back().len) == "\r\n");
  }
  SECTION("exactly at a buffer's end: that buffer is gone, the next is whole") {
    drop_sent(bufs, head.size() + 2 * kGiB);
    CHECK(bufs.front().base == body.base + 2 * kGiB);
    CHECK(bufs.front().len == kGiB);
    CHECK(write_bufs_size(bufs) == total - head.size() - 2 * kGiB);
  }
  SECTION("part of the head") {
    drop_sent(bufs, 5);
    CHECK(std::string_view(bufs.front().base, bufs.front().len) == std::string_view(head).substr(5));
    CHECK(write_bufs_size(bufs) == total - 5);
  }
  SECTION("nothing, and everything") {
    drop_sent(bufs, 0);
    CHECK(write_bufs_size(bufs) == total);
    drop_sent(bufs, total);
    CHECK(bufs.empty());
  }
}

TEST_CASE("the pieces follow the limit they are given; empty bytes add no buffer") {
  std::vector<uv_buf_t> bufs;
  add_write_bufs(bufs, "");
  CHECK(bufs.empty());
  add_write_bufs(bufs, "abcdefghij", 3);
  REQUIRE(bufs.size() == 4);
  CHECK(std::string_view(bufs[3].base, bufs[3].len) == "j");
  drop_sent(bufs, 4);
  REQUIRE(bufs.size() == 3);
  CHECK(std::string_view(bufs[0].base, bufs[0].len) == "ef");
}
