// The ports and the watched folder (listen.h).
#include "listen.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string_view>

#include <fmt/format.h>

#include "../log/log.h"

namespace arbiter {

namespace {

constexpr int kListenBacklog = 2048;
constexpr int kBindAttempts = 5;

void log_error(logline::Level level, const std::string& message) {
  logline::write(logline::Stream::err, level, "gunicorn.error", message);
}

// Binds host:port (0.0.0.0, or 127.0.0.1 with --dev), retrying while the port is busy as gunicorn does
// (docs/behaviour.md 2.1); `flag` is the option that chose the port, for the messages.
int bind_listener(const char* host, int port, const char* flag) {
  for (int attempt = 1;; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      log_error(logline::Level::error, fmt::format("Cannot create a socket for port {}: {}", port, strerror(errno)));
      return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0 && listen(fd, kListenBacklog) == 0) {
      // Workers inherit it across fork; CLOEXEC only keeps it from programs a script runs.
      return fd;
    }
    int error = errno;
    close(fd);
    if (error != EADDRINUSE) {
      log_error(logline::Level::error,
                fmt::format("Can't connect to ('{}', {}): {}. Choose another port with {}.", host, port,
                            strerror(error), flag));
      return -1;
    }
    log_error(logline::Level::error, fmt::format("Connection in use: ('{}', {})", host, port));
    if (attempt == kBindAttempts) {
      log_error(logline::Level::error,
                fmt::format("Can't connect to ('{}', {}): the port is in use by another process. Stop that "
                            "process or choose another port with {}.",
                            host, port, flag));
      return -1;
    }
    log_error(logline::Level::error, "Retrying in 1 second.");
    sleep(1);
  }
}

}  // namespace

const char* listen_host(const Launch& launch) { return launch.dev ? "127.0.0.1" : "0.0.0.0"; }

bool bind_listeners(const Launch& launch, std::vector<int>& listeners, int& metrics_fd) {
  const char* host = listen_host(launch);
  if (launch.separate_health && launch.health_port != launch.port) {
    int health = bind_listener(host, launch.health_port, "--health_port");
    if (health < 0) return false;
    listeners.push_back(health);
  }
  int main_fd = bind_listener(host, launch.port, "--port");
  if (main_fd < 0) return false;
  listeners.push_back(main_fd);
  if (launch.metrics_port) {
    metrics_fd = bind_listener(host, launch.metrics_port, "--metrics_port");
    if (metrics_fd < 0) return false;
  }
  return true;
}

// --reload: an inotify watch on the entry script's folder; -1 when off or impossible (logged).
int watch_folder(const Launch& launch) {
  if (!launch.reload) return -1;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0 || launch.watch_dir.empty() ||
      inotify_add_watch(fd, launch.watch_dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                                          IN_DELETE) < 0) {
    log_error(logline::Level::error,
              fmt::format("--reload: cannot watch the folder '{}' for changes: {}. The server runs without "
                          "reloading; check that the folder exists and is readable, or raise "
                          "fs.inotify.max_user_watches.",
                          launch.watch_dir, strerror(errno)));
    if (fd >= 0) close(fd);
    return -1;
  }
  log_error(logline::Level::info,
            fmt::format("Watching {} for changes (--reload): each saved edit starts new workers with it; while "
                        "the script fails to load, /score answers 503 with the error.",
                        launch.watch_dir));
  return fd;
}

bool is_edit(const std::string& name) {
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (name[0] == '.' || name == "__pycache__" || name == "4913") return false;  // 4913: vim's probe file
  return !(ends("~") || ends(".swp") || ends(".swx") || ends(".pyc") || ends(".tmp"));
}

}  // namespace arbiter
