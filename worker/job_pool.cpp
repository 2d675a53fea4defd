// Jobs on the I/O thread: taken for a request, kept while a write still reads their bytes, reused once
// answered (so that a request's buffers serve the next one); a stream's window given back as the socket
// takes its bytes, and a stream's Python thread woken when its client is gone.
#include "io_internal.h"

namespace worker {

// Only this thread takes and returns jobs.
Job* acquire_job() {
  if (io->spare_jobs.empty()) return new Job;
  Job* job = io->spare_jobs.back();
  io->spare_jobs.pop_back();
  return job;
}

void release_job(Job* job) {
  if (job->writes > 0) {  // a write still reads its body: job_written releases it after the last one
    job->release_when_written = true;
    return;
  }
  if (job->response.body_hold) {  // the Python object the body was sent from; only Python may let it go
    io->queue->release_hold(job->response.body_hold);
    job->response.body_hold = nullptr;
  }
  // The answer is written (or failed, or dropped): the Response run() returned may be closed now
  // (hand_over_closers takes it to the Python thread).
  if (job->response.closer) {
    io->closers.push_back(job->response.closer);
    job->response.closer = nullptr;
  }
  if (io->spare_jobs.size() >= kSpareJobs) {
    delete job;
    return;
  }
  job->reset();
  io->spare_jobs.push_back(job);
}

void give_back_stream_bytes(Job* job, uint64_t bytes) {
  if (bytes == 0) return;
  job->stream_queued.fetch_sub(bytes);
  // Seen after the subtraction, as the Python thread sets it before looking at the count: one of the two
  // sees the other's store, so no wake-up is lost.
  if (job->stream_waiting.load()) {
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    io->queue->stream_room.notify_one();
  }
}

void job_written(Job* job, uint64_t stream_bytes) {
  give_back_stream_bytes(job, stream_bytes);
  if (--job->writes == 0 && job->release_when_written) release_job(job);
}

void cancel_job(Job* job) {
  job->cancelled.store(true);
  if (job->stream_waiting.load()) {  // as in give_back_stream_bytes
    std::lock_guard<std::mutex> lock(io->queue->mutex);
    io->queue->stream_room.notify_one();
  }
}

}  // namespace worker
