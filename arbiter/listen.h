// What the arbiter listens to besides signals: the ports it binds before the first fork (workers
// inherit them) and, with --reload, the entry script's folder. Internal to arbiter/.
#pragma once

#include <string>
#include <vector>

#include "arbiter.h"

namespace arbiter {

// 0.0.0.0, or 127.0.0.1 with --dev (a person's own machine: nothing outside it reaches the script).
const char* listen_host(const Launch& launch);

// Binds the health port (when separate), the scoring port and the metrics port (when asked for), in
// that order, retrying a busy port as gunicorn does (docs/behaviour.md 2.1). False, logged, when one
// cannot be bound.
bool bind_listeners(const Launch& launch, std::vector<int>& listeners, int& metrics_fd);

// --reload: an inotify watch on the entry script's folder; -1 when off or impossible (logged).
int watch_folder(const Launch& launch);

// Whether a changed file's name is an edit. Editors write temporary and backup files and Python writes
// __pycache__; those are not edits.
bool is_edit(const std::string& name);

}  // namespace arbiter
