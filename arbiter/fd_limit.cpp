// The open-file limit: each connection is a descriptor, and the soft limit a shell hands us (often
// 1024) is far below what one worker can hold. Raised before the first fork, so workers inherit it.
#include <string.h>
#include <sys/resource.h>

#include <fmt/format.h>

#include "../log/log.h"
#include "arbiter.h"

namespace arbiter {

void raise_open_file_limit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  rlim_t wanted = limit.rlim_max;
  limit.rlim_cur = wanted;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
    logline::write(logline::Stream::err, logline::Level::warning, "gunicorn.error",
                   fmt::format("Cannot raise the open file limit to its hard limit {}: {}. Each connection needs "
                               "one; raise it with ulimit -n before starting.",
                               static_cast<uint64_t>(wanted), strerror(errno)));
}

}  // namespace arbiter
