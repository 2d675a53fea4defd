// The I/O thread: its libuv loop, set up once after boot, and what the loop does on its own (the
// heartbeat, writing the log lines of a pass, deciding whether to take connections). Requests that need no Python are
// answered on this thread at once; score requests become jobs for the Python thread. The work is in
// the files io_internal.h lists, one concern each.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "../log/log.h"
#include "io_internal.h"
#include "settings.h"

namespace worker {

Io* io = nullptr;

namespace {

void on_heartbeat(uv_timer_t*) { io->slot->heartbeat_ns.store(base::monotonic_ns(), std::memory_order_relaxed); }

// Request lines wait in the I/O thread's buffer and go out once per loop pass, before the loop blocks;
// then the Response objects answered in this pass go to the Python thread to be closed.
void on_loop_pass_end(uv_prepare_t*) {
  logline::flush();
  hand_over_closers();
  pace_accepting();
}

void io_main() {
  logline::buffer_this_thread();
  uv_prepare_start(&io->flush_logs, on_loop_pass_end);
  uv_check_start(&io->hand_off, on_poll_handled);
  uv_run(&io->loop, UV_RUN_DEFAULT);
  logline::flush();
  hand_over_closers();
}

// The settings the arbiter resolved, and those config.json may set (read after boot).
void apply_config(const Config& config) {
  const Settings& s = config.settings;
  io->limits.max_request_line = s.limit_request_line;
  io->limits.max_header_field = s.limit_request_field_size;
  io->limits.max_header_count = s.limit_request_fields;
  io->limits.max_body = s.limit_request_body;
  io->wait_ns[kHead] = s.request_head_timeout_ms * 1000000;
  io->wait_ns[kBody] = s.request_body_timeout_ms * 1000000;
  io->wait_ns[kIdle] = s.keep_alive_timeout_ms * 1000000;
  io->wait_ns[kLinger] = kLingerNs;
  io->worker_timeout_s = s.worker_timeout_s;
  io->server_version = config.server_version;
  io->dev = s.dev;
  io->capture_dir = s.capture_dir;
  io->load_failure = config.load_failure;
  if (config.cors_origins) io->cors = http::CorsPolicy::parse(*config.cors_origins);
}

}  // namespace

void start_io(const Options& options, JobQueue& queue) {
  io = new Io;
  io->queue = &queue;
  io->table = options.table;
  io->slot = &options.table->slots[options.slot];
  io->read_cb = on_read;
  io->on_drained = finish_drain;
  attach_metrics(io->metrics, io->slot->metrics);
  io->build.version = AZMLINFSRV_VERSION;
  io->build.python = bridge::python_version();
  apply_config(config());
  measure_fd_limit();
  uv_loop_init(&io->loop);
  uv_async_init(&io->loop, &io->done_async, on_jobs_done);
  uv_prepare_init(&io->loop, &io->flush_logs);
  uv_check_init(&io->loop, &io->hand_off);
  queue.done_async = &io->done_async;
  // The scoring port is the last listener (arbiter/listen.cpp binds a separate health port first): only
  // it is paced; probes on the health port and the metrics port are always taken.
  if (!listen_on(options.listen_fds, options.listen_fds.empty() ? -1 : options.listen_fds.back(), options.metrics_fd,
                 options.handoff_fds)) {
    logline::write(logline::Stream::out, logline::Level::critical, "azmlinfsrv",
                   fmt::format("Worker {} cannot poll its listening sockets; it exits.", getpid()));
    _exit(1);
  }
  uv_signal_init(&io->loop, &io->sigterm);
  uv_signal_init(&io->loop, &io->sigint);
  uv_signal_init(&io->loop, &io->sigquit);
  uv_signal_start(&io->sigterm, on_stop_signal, SIGTERM);
  uv_signal_start(&io->sigint, on_stop_signal, SIGINT);
  uv_signal_start(&io->sigquit, on_stop_signal, SIGQUIT);
  uv_timer_init(&io->loop, &io->heartbeat);
  uv_timer_start(&io->heartbeat, on_heartbeat, 0, 1000);
  io->scoring_timeout_ms = bridge::scoring_timeout_ms();
  io->deadline_tick_ms = static_cast<uint64_t>(std::clamp(io->scoring_timeout_ms, 1L, long{kDeadlineTickMs}));
  io->python_thread = pthread_self();  // start_io runs on it
  uv_timer_init(&io->loop, &io->deadline_watch);
  uv_timer_init(&io->loop, &io->alarm_due);
  uv_timer_init(&io->loop, &io->drain_grace);
  uv_timer_init(&io->loop, &io->exit_timer);
  uv_signal_init(&io->loop, &io->timed_out);
  uv_signal_start(&io->timed_out, on_timed_out, kSignalAnswerTimedOut);
  uv_timer_init(&io->loop, &io->sweep);
  uv_timer_start(&io->sweep, on_sweep, kSweepMs, kSweepMs);

  // The loop thread takes no signals: they reach the Python thread (SIGALRM, which this thread sends it
  // for the scoring timeout) and libuv's handlers forward the stop signals to the loop through its pipe.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  io->thread = std::thread(io_main);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void join_io() {
  if (io->thread.joinable()) io->thread.join();
}

}  // namespace worker
