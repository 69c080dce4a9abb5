// Write-behind for a capture file: a long capture writes gigabytes nobody
// reads back soon. Left alone, every byte lands in a page-cache page taken
// from free memory, stays dirty until the flusher's timeout, and pushes other
// files' pages out. Here a helper thread starts the writeback of each chunk
// the writer finished (sync_file_range, no waiting) and, a few chunks later,
// drops the pages the disk has taken (POSIX_FADV_DONTNEED leaves pages still
// dirty or under writeback alone). The writer's next pages then come from the
// memory just freed, still in cache: on a VM that reports free memory to its
// host, fresh pages cost a host fault each: the page-cache copy ran at about
// 3 GB/s there, and at 4.5-11 GB/s with write-behind.
//
// The helper thread is the one that may block (a busy disk's request queue):
// the writer only publishes how far the file is written, so a slow disk never
// stalls the reading of the ring; it only means fewer pages get recycled.
// Not quite never: ext4 allocates the blocks of the pages written back under
// the inode's i_data_sem (here, in this thread's sync_file_range, where
// allocation may wait for a block bitmap read from disk, and in the kworker
// that converts unwritten extents when the I/O ends), and the writer's next
// write() takes it too (ext4_da_get_block_prep). 1.3 GB bursts of 64 KiB
// sends at load 5-7, the writer SCHED_FIFO: it waited in
// rwsem_down_write_slowpath 1-16 times per burst, up to 23 ms at once with
// this thread at normal priority and up to 66 ms with it real-time too (so
// not its preemption: the holders wait for the disk), while the ring fills at
// ~1.5 GB/s (64 MiB in ~43 ms). That is what still drops in such bursts.
// Tried and left out: keeping 256 MiB of the file allocated ahead
// (fallocate, FALLOC_FL_KEEP_SIZE, in one call or in 8 MiB steps). Alone
// with a writer it helped (1.3 GB in 2 MiB writes: the longest write 20-41 ms
// against 56-71), but in the capture fallocate holds the inode lock that
// every write() takes while it too reads block bitmaps: the writer then
// waited there instead (up to 35 ms), and 2 of 6 bursts still dropped.
// The writer never waits for this thread: it publishes the written end in an
// atomic and wakes the thread with a semaphore (sem_post does not block). A
// mutex shared with it would be a priority inversion: the real-time writer
// blocked while this normal-priority thread, preempted by the sender or the
// receiver on a busy CPU, holds the lock (one traced run of an experimental
// build had the writer asleep 104 ms in futex_wait while its ring filled).
// The owner destroys it (joining the thread) before the file is closed.
#ifndef UNIXSOCK_WRITE_BEHIND_H
#define UNIXSOCK_WRITE_BEHIND_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <thread>

namespace unixsock {

class WriteBehind {
 public:
  static constexpr off_t kChunk = 4 << 20;  // writeback started per call
  static constexpr off_t kLag = 16 << 20;   // how far behind the written end pages are dropped

  // fd: a regular file; from: the offset the writer starts at.
  WriteBehind(int fd, off_t from) : fd_(fd), written_(from), started_seen_(from), started_(from), dropped_(from) {
    sem_init(&wake_, 0, 0);
    // signals stay with the threads that handle them (Node's main thread)
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_ = std::thread([this] { Run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;
  ~WriteBehind() {
    stop_.store(true, std::memory_order_release);
    sem_post(&wake_);
    thread_.join();
    sem_destroy(&wake_);
  }

  // The file is whole up to end (called by the writer after each write).
  // busy: the writer is behind; the helper is not woken meanwhile: its
  // writeback and page dropping cost 0.11-0.17 CPU-s per GB, which the writer
  // needs then (1 GB of 64 KiB sends at load ~7: 2 of 4 runs lossless when it
  // waits, 0 of 4 when it does not).
  void Written(off_t end, bool busy = false) {
    written_.store(end, std::memory_order_release);
    if (!busy && end - started_seen_ >= kChunk) {
      started_seen_ = end;
      sem_post(&wake_);
    }
  }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "unixsock-behind");
    for (;;) {
      while (sem_wait(&wake_) != 0 && errno == EINTR) {
      }
      if (stop_.load(std::memory_order_acquire)) break;
      off_t end = written_.load(std::memory_order_acquire);
      if (end - started_ < kChunk) continue;
      sync_file_range(fd_, started_, end - started_, SYNC_FILE_RANGE_WRITE);
      started_ = end;
      if (end - kLag - dropped_ >= kChunk) {
        posix_fadvise(fd_, dropped_, end - kLag - dropped_, POSIX_FADV_DONTNEED);
        dropped_ = end - kLag;
      }
    }
  }

  int fd_;
  sem_t wake_;  // posted by the writer, waited on by the helper
  std::atomic<bool> stop_{false};
  std::atomic<off_t> written_;  // the writer's, read by the helper
  off_t started_seen_;          // writer thread only: where it last woke the helper
  off_t started_;               // helper thread only
  off_t dropped_;               // helper thread only
  std::thread thread_;
};

}  // namespace unixsock

#endif  // UNIXSOCK_WRITE_BEHIND_H
