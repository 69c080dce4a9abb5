// The capture's hot path: kernel records (bpf/unixsock.h) straight to pcapng
// enhanced packet blocks on a file descriptor, in the addon's worker thread,
// without a trip through JavaScript. JavaScript writes the section header and
// interface blocks before, and the statistics block after.
//
// Each packet is the unixsock link-layer header (docs/link-header.md; struct
// unixsock_link_header in bpf/unixsock.h: 144 fixed big-endian bytes, then
// TLVs) followed by the payload. src/link-header.ts decodes the same layout
// (the tests read every file this writes with it).
//
// Copies: block heads, link headers and small payloads (inside the MSG record)
// are encoded into a side buffer; larger payloads are not copied at all: the
// output is a list of segments, and those of DATA fragments point into the
// records as the caller gave them (the ring buffer, read in place: ring.h).
// The caller keeps those records until Write() has returned; a send still
// waiting for records then has its fragments copied (rare). Whole blocks only
// reach the file: a write that fails half way is cut back (regular files) to
// the last whole block.
//
// When a pipe (Wireshark's fifo, -w -) takes less than is sent, the bytes
// move out of the ring into memory (Spill) instead of waiting: the ring is
// what the kernel drops from once it is full, and it is small (64 MiB: 0.13 s
// of a 4 KiB stream). dumpcap reads a fifo at ~40k blocks/s here (0.17 GB/s
// of 4 KiB messages, against ~0.5 GB/s sent): a 1 GB burst through
// `tshark -i` lost 47-60% of its messages, and none in 4 of 4 runs with the
// spill (up to 690 MiB of it). A file is not spilled: fresh memory costs more
// to fill than the page cache here (clear_page of each new page, ~80% of the
// spilling writer's samples), and with it 64 KiB bursts lost more, not less.
#ifndef UNIXSOCK_PCAPNG_OUT_H
#define UNIXSOCK_PCAPNG_OUT_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <semaphore.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <new>
#include <thread>
#include <unordered_map>
#include <vector>

extern "C" {
#include <linux/types.h>
#include "unixsock.h"
}
#include "identity.h"
#include "write_behind.h"

namespace unixsock {

// The largest block written, header, options and padding included
// (UNIXSOCK_MAX_BLOCK: dumpcap's limit, bpf/unixsock.h says why). Same rule as
// maxRecordPayload() in src/link-header.ts.
constexpr uint32_t kMaxBlock = UNIXSOCK_MAX_BLOCK;
constexpr uint32_t kEpbOverhead = UNIXSOCK_EPB_OVERHEAD;      // EPB head, direction option, trailing length
constexpr uint32_t kFixedLen = sizeof(unixsock_link_header);  // link header without TLVs
constexpr uint32_t kEpbHead = UNIXSOCK_EPB_HEAD;
// where a field of the link header starts
#define LH(field) offsetof(struct unixsock_link_header, field)

inline uint32_t Pad4(uint32_t n) { return (n + 3) & ~3u; }
inline void Be16(uint8_t* p, uint16_t v) {
  p[0] = v >> 8;
  p[1] = v;
}
inline void Be32(uint8_t* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}
inline void Be64(uint8_t* p, uint64_t v) {
  Be32(p, v >> 32);
  Be32(p + 4, (uint32_t)v);
}
inline void Le32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }  // x86_64 only, like the BPF side

// A byte buffer that grows without zero-filling (payloads are copied over it anyway).
class Buf {
 public:
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { free(p_); }
  uint8_t* data() { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  void Reserve(size_t cap) {
    if (cap <= cap_) return;
    auto* q = static_cast<uint8_t*>(realloc(p_, cap));
    if (!q) throw std::bad_alloc();
    p_ = q;
    cap_ = cap;
  }
  // n more bytes at the end, uninitialized
  uint8_t* Append(size_t n) {
    if (n_ + n > cap_) Reserve(std::max(n_ + n, cap_ * 2));
    uint8_t* at = p_ + n_;
    n_ += n;
    return at;
  }
  void Shrink(size_t n) { n_ = std::min(n_, n); }

 private:
  uint8_t* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

// Output that could not be written yet, kept in order in 4 MiB chunks.
// Chunks are reused (a few kept): fresh memory costs a host fault per page on
// this VM (virtio-balloon free page reporting), recycled memory does not.
// New chunks are populated by mmap in one call (MAP_POPULATE), in 4 KiB
// pages: 1 GiB copied into fresh chunks took 0.41-0.54 s so, 0.47-0.93 s
// faulted page by page, and 1.5-2.6 s with MADV_HUGEPAGE (12 runs, load 2-3):
// a huge page needs a free 2 MiB block, which here is one the guest had
// reported to the host, so it comes back through host faults. In a 1 GB burst
// into `tshark -i` each 2 MiB of huge-page spill then took the writer 5-13 ms
// (~200 MB/s, clear_page 64% of its samples) while the sender went on at
// 600 MB/s: the ring filled and dropped. (An earlier measurement had found
// huge pages cheaper: they are when the host still backs the memory, 0.13 s
// per GiB right after another run freed it.)
// Populating was still the writer's bottleneck for 64 KiB bursts: traced,
// every drop into `tshark -i` came while spilling, the writer's loop never
// stalled over 2.5 ms, but 130-220 chunks per 1 GB burst cost it 0.17-0.30 s.
// So a thread of normal priority keeps kReady chunks faulted in ahead, and
// the writer only copies (64 KiB into tshark -i, 16 MiB ring, load ~3,
// interleaved: 3 of 10 runs lossless against 0 of 10, a third of the drops;
// default ring 41 of 42 against 38 of 42; its page faults slow the sender
// on the other CPU: 0.57 s median against 0.46 s at 16 MiB, 4 KiB into
// tshark -i 1.52-1.60 s against 1.35-1.51 s).
// The writer never waits for the pool thread: the populated chunks pass
// through a single-producer single-consumer ring of kReady slots and the
// accounting is atomic; the writer wakes the pool with a semaphore. A mutex
// shared with it was a priority inversion: the real-time writer blocked while
// the normal-priority pool thread, preempted on a busy CPU, held the lock.
class Spill {
 public:
  static constexpr size_t kChunk = 4u << 20;
  static constexpr size_t kKeep = 8;  // free chunks kept for reuse (32 MiB)

  static constexpr size_t kReady = 16;  // chunks the pool thread keeps populated ahead (64 MiB)

  explicit Spill(size_t limit) : limit_(limit) {
    sem_init(&wake_, 0, 0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);  // signals stay with Node's main thread
    pool_ = std::thread([this] { Fill(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  Spill(const Spill&) = delete;
  Spill& operator=(const Spill&) = delete;
  ~Spill() {
    stop_.store(true, std::memory_order_release);
    sem_post(&wake_);
    pool_.join();
    sem_destroy(&wake_);
    for (auto& c : q_) Free(c.p);
    for (auto* p : free_) Free(p);
    for (uint8_t* p; (p = TakeReady());) Free(p);
  }

  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  size_t limit() const { return limit_; }
  size_t peak() const { return peak_; }
  // Whether n more bytes fit under the limit.
  bool Fits(size_t n) const { return bytes_ + n <= limit_; }

  // Copies n bytes to the end. False when memory ran out (nothing copied then).
  bool Append(const uint8_t* p, size_t n) {
    size_t room = q_.empty() ? 0 : kChunk - q_.back().end;
    std::vector<uint8_t*> fresh;
    for (size_t need = n > room ? n - room : 0; need > 0; need -= std::min(need, kChunk)) {
      uint8_t* c = Alloc();
      if (!c) {
        for (auto* f : fresh) Recycle(f);
        return false;
      }
      fresh.push_back(c);
    }
    for (auto* c : fresh) q_.push_back({c, 0, 0});
    auto it = q_.end() - (std::ptrdiff_t)fresh.size() - (room ? 1 : 0);
    while (n) {
      Chunk& b = *it++;
      size_t k = std::min(n, kChunk - b.end);
      memcpy(b.p + b.end, p, k);
      b.end += k;
      p += k;
      n -= k;
      bytes_ += k;
    }
    peak_ = std::max(peak_, bytes_);
    return true;
  }

  // The oldest bytes as up to max iovecs.
  int Front(iovec* iov, int max) const {
    int n = 0;
    for (auto it = q_.begin(); it != q_.end() && n < max; ++it) iov[n++] = {it->p + it->begin, it->end - it->begin};
    return n;
  }

  // n of the oldest bytes were written.
  void Consume(size_t n) {
    bytes_ -= n;
    while (n) {
      Chunk& f = q_.front();
      size_t k = std::min(n, f.end - f.begin);
      f.begin += k;
      n -= k;
      if (f.begin == f.end && (q_.size() > 1 || f.end == kChunk)) {
        Recycle(f.p);
        q_.pop_front();
      } else if (f.begin == f.end) {
        f.begin = f.end = 0;  // the last chunk, emptied: filled again from its start
      }
    }
  }

  // Drops everything (the output failed).
  void Clear() {
    for (auto& c : q_) Recycle(c.p);
    q_.clear();
    bytes_ = 0;
  }

 private:
  struct Chunk {
    uint8_t* p;
    size_t begin, end;
  };
  uint8_t* Alloc() {
    if (!free_.empty()) {
      uint8_t* p = free_.back();
      free_.pop_back();
      return p;
    }
    in_use_.fetch_add(kChunk);
    if (uint8_t* p = TakeReady()) {
      sem_post(&wake_);  // one slot free: the pool fills it
      return p;
    }
    uint8_t* p = Populated();
    if (!p) in_use_.fetch_sub(kChunk);
    return p;
  }
  // The oldest populated chunk, or null (the writer's end of the ring).
  uint8_t* TakeReady() {
    size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return nullptr;
    uint8_t* p = slots_[h % kReady];
    head_.store(h + 1, std::memory_order_release);
    return p;
  }
  // The pool thread: keeps kReady chunks populated, within the limit
  // together with the chunks the spill holds.
  void Fill() {
    pthread_setname_np(pthread_self(), "unixsock-spill");
    while (!stop_.load(std::memory_order_acquire)) {
      size_t t = tail_.load(std::memory_order_relaxed), ready = t - head_.load(std::memory_order_acquire);
      if (ready < kReady && in_use_.load() + (ready + 1) * kChunk <= limit_) {
        uint8_t* p = Touched();
        if (!p) break;
        slots_[t % kReady] = p;
        tail_.store(t + 1, std::memory_order_release);
        continue;
      }
      // a post since the check above (a chunk taken or freed) makes this return at once
      while (sem_wait(&wake_) != 0 && errno == EINTR) {
      }
    }
  }
  // A chunk faulted in page by page: MAP_POPULATE would hold mmap_lock (read)
  // through the whole chunk, and the writer's own mmap/munmap (write) then
  // waits for this thread, which runs at normal priority (141-387 ms at load 5-7).
  static uint8_t* Touched() {
    void* m = mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    auto* p = static_cast<volatile uint8_t*>(m);
    for (size_t i = 0; i < kChunk; i += 4096) p[i] = 0;
    return static_cast<uint8_t*>(m);
  }
  static uint8_t* Populated() {
    void* p = mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    return static_cast<uint8_t*>(p);
  }
  void Recycle(uint8_t* p) {
    if (free_.size() < kKeep) {
      free_.push_back(p);
      return;
    }
    Free(p);
    in_use_.fetch_sub(kChunk);
    sem_post(&wake_);
  }
  static void Free(uint8_t* p) { munmap(p, kChunk); }

  size_t limit_;
  size_t bytes_ = 0, peak_ = 0;
  std::deque<Chunk> q_;
  std::vector<uint8_t*> free_;
  // shared with the pool thread:
  uint8_t* slots_[kReady] = {};            // populated chunks not used yet: [head_, tail_) modulo kReady
  std::atomic<size_t> head_{0}, tail_{0};  // taken by the writer / put by the pool thread
  std::atomic<size_t> in_use_{0};          // bytes of chunks handed out and not unmapped (free_ included)
  std::atomic<bool> stop_{false};
  sem_t wake_;  // posted by the writer, waited on by the pool thread
  std::thread pool_;
};

// How much memory a spill may take: an eighth of what the kernel says is
// available at start (MemAvailable), at most 2 GiB, at least 64 MiB.
inline size_t SpillLimit() {
  size_t avail_kb = 0;
  if (FILE* f = fopen("/proc/meminfo", "re")) {
    char line[128];
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %zu kB", &avail_kb) == 1) break;
    fclose(f);
  }
  size_t lim = avail_kb * 1024 / 8;
  return std::min<size_t>(std::max<size_t>(lim, 64u << 20), size_t(2) << 30);
}

struct Counters {
  uint64_t messages = 0;    // sends written (complete or flagged lost)
  uint64_t packets = 0;     // enhanced packet blocks
  uint64_t incomplete = 0;  // sends whose DATA/CTRL records the ring lost
  uint64_t orphans = 0;     // DATA/CTRL records without their MSG
  uint64_t bad = 0;         // records that are not what bpf/unixsock.h says
  uint64_t spill_peak = 0;  // most output bytes held in memory at once
};

class PcapngOut {
 public:
  // fd: where blocks go (kMemory: into memory, taken with TakeOutput());
  // clock_offset: CLOCK_REALTIME - CLOCK_MONOTONIC (ns), added to the kernel's
  // timestamps; limit: stop after this many sends (0: no limit).
  static constexpr int kMemory = -1;
  PcapngOut(int fd, int64_t clock_offset, uint64_t limit) : fd_(fd), offset_(clock_offset), limit_(limit) {
    struct stat st;
    regular_ = fd != kMemory && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular_) {
      base_ = lseek(fd, 0, SEEK_CUR);
      behind_ = std::make_unique<WriteBehind>(fd, base_);
    }
    pipe_ = !regular_ && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
    side_.Reserve(1 << 20);
    if (pipe_) {
      spill_ = std::make_unique<Spill>(SpillLimit());
      // Non-blocking while this writer has it (RWF_NOWAIT would leave the
      // descriptor alone, but named fifos refuse it: EOPNOTSUPP on 6.18);
      // JavaScript's writes before and after (pcapng.ts) retry on EAGAIN.
      if ((fl_ = fcntl(fd, F_GETFL)) >= 0 && !(fl_ & O_NONBLOCK)) fcntl(fd, F_SETFL, fl_ | O_NONBLOCK);
      // A full pipe wakes its writer when one page is free again (pipe_read):
      // with 16 pages, every 4 KiB dumpcap read was one round trip. 1 MiB is
      // what any user may ask for (fs.pipe-max-size).
      fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    }
  }
  ~PcapngOut() { End(); }

  // Container names for the records' identity options (none: numeric ids only).
  void set_identities(IdentityTable* t) { ids_ = t; }
  const Counters& counters() const { return c_; }
  bool limit_reached() const { return limit_ && c_.messages >= limit_; }
  // errno of the write that failed (EPIPE: the reader went away), 0 if none
  int write_error() const { return werr_; }
  size_t pending_bytes() const { return queued_; }
  // Output bytes held in memory because the output fell behind.
  size_t spilled() const { return spill_ ? spill_->bytes() : 0; }
  size_t spill_limit() const { return spill_ ? spill_->limit() : 0; }
  // Whether output or waiting sends point into the records given so far.
  bool holds_records() const { return ring_segs_ > 0 || !pending_.empty(); }

  // One record (bpf/unixsock.h); it must stay valid until the next Write().
  void Record(const uint8_t* p, size_t size) {
    if (werr_ || limit_reached()) return;
    if (size < 1) {
      c_.bad++;
      return;
    }
    if (p[0] == UNIXSOCK_REC_MSG) return Msg(p, size);
    if (p[0] != UNIXSOCK_REC_DATA && p[0] != UNIXSOCK_REC_CTRL) {
      c_.bad++;
      return;
    }
    if (size < UNIXSOCK_DATA_HDR_SIZE) {
      c_.bad++;
      return;
    }
    const auto* d = reinterpret_cast<const unixsock_data*>(p);
    auto it = pending_.find(d->tid);
    if (it == pending_.end() || it->second->msg.ts != d->ts || UNIXSOCK_DATA_HDR_SIZE + (size_t)d->len > size) {
      c_.orphans++;
      return;
    }
    Pending& pe = *it->second;
    if (p[0] == UNIXSOCK_REC_DATA) {
      uint32_t take = std::min<uint32_t>(d->len, pe.msg.cap_len - pe.got);
      if (take) pe.frags.push_back({d->data, take, false});
      pe.got += take;
    } else {
      pe.ctrl.assign(d->data, d->data + d->len);
      pe.need_ctrl = false;
    }
    if (pe.got >= pe.msg.cap_len && !pe.need_ctrl) Finish(it, false);
  }

  // The kernel dropped messages before the next record given: the next
  // packet written says so (flag DROPS_BEFORE: Wireshark's expert info).
  void DropsBefore() { drops_before_ = true; }

  // Emits every send still waiting for records (end of capture), oldest first.
  void FlushPending() {
    while (!pending_.empty()) {
      auto oldest = pending_.begin();
      for (auto it = pending_.begin(); it != pending_.end(); ++it)
        if (it->second->msg.ts < oldest->second->msg.ts) oldest = it;
      Finish(oldest, true);
    }
  }

  // After the last Write(): what waited in memory is written (blocking), the
  // write-behind thread ends (before the file is closed), a pipe is given
  // back blocking as it came.
  void End() {
    Drain(SIZE_MAX, true);
    behind_.reset();
    if (pipe_ && fl_ >= 0 && !(fl_ & O_NONBLOCK)) fcntl(fd_, F_SETFL, fl_);
    fl_ = -1;
  }

  // The blocks written to memory so far (kMemory), whole blocks only.
  std::vector<uint8_t> TakeOutput() {
    std::vector<uint8_t> out;
    out.swap(mem_);
    return out;
  }

  // Writes everything queued (behind the spilled output, if any); afterwards
  // no output refers to the records given so far. behind: the ring is
  // filling up (the write-behind then waits). Returns false (and remembers
  // errno) on failure.
  bool Write(bool behind = false) {
    busy_ = behind;
    Detach();
    if (werr_) return false;
    if (ids_) Identities();
    if (queued_ > 0 && fd_ == kMemory) {
      mem_.reserve(mem_.size() + queued_);
      for (auto& g : segs_) {
        const uint8_t* p = g.ring ? g.ring : side_.data() + g.off;
        mem_.insert(mem_.end(), p, p + g.len);
      }
      Clear();
      return true;
    }
    if (queued_ > 0) {
      bool to_spill = spill_ && !spill_->empty() && spill_->Fits(queued_);
      if (to_spill && SpillQueued()) {
        Clear();
      } else {
        if (spill_ && !spill_->empty() && !Drain(SIZE_MAX, true)) return false;  // order: the older bytes first
        if (!WriteQueued()) return false;
      }
    }
    Mark();
    return true;
  }

  // Writes spilled output: as much as the pipe takes now, at most budget
  // bytes (so that the ring is read in between); block: all of it. Returns
  // false (and remembers errno) on failure.
  bool Drain(size_t budget = kDrainStep, bool block = false) {
    if (werr_ || !spill_ || spill_->empty()) return !werr_;
    iovec iov[64];
    while (!spill_->empty() && (budget > 0 || block)) {
      int n = spill_->Front(iov, 64);
      size_t want = 0;
      for (int i = 0; i < n; i++) {
        if (!block && want + iov[i].iov_len > budget) {
          iov[i].iov_len = budget - want;
          n = i + 1;
        }
        want += iov[i].iov_len;
      }
      if (want == 0) break;
      ssize_t w = writev(fd_, iov, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          if (!block) return true;
          pollfd pfd = {fd_, POLLOUT, 0};
          poll(&pfd, 1, 100);
          continue;
        }
        return Fail(errno);
      }
      spill_->Consume((size_t)w);
      written_ += (size_t)w;
      budget -= std::min(budget, (size_t)w);
    }
    Mark();
    return true;
  }

  static constexpr size_t kDrainStep = 4u << 20;

 private:
  struct Frag {
    const uint8_t* p;
    uint32_t len;
    bool owned;  // copied out of the caller's records (lives in Pending::stash)
  };
  struct Pending {
    unixsock_msg msg;
    uint32_t got = 0;
    bool need_ctrl;
    std::vector<uint8_t> ctrl;
    std::vector<Frag> frags;
    std::vector<std::unique_ptr<uint8_t[]>> stash;
    explicit Pending(const unixsock_msg& m) : msg(m), need_ctrl(m.flags & UNIXSOCK_F_HAS_CTRL) {}
  };
  using PendingMap = std::unordered_map<uint32_t, std::unique_ptr<Pending>>;
  // A piece of output: bytes in the caller's records (ring != nullptr) or in side_ at off.
  struct Seg {
    const uint8_t* ring;
    size_t off;
    size_t len;
  };

  void Clear() {
    segs_.clear();
    ring_segs_ = 0;
    side_.Shrink(0);
    queued_ = 0;
  }

  // The queued output into the spill. False (nothing changed) when memory ran out.
  bool SpillQueued() {
    size_t before = spill_->bytes();
    for (auto& g : segs_) {
      if (!spill_->Append(g.ring ? g.ring : side_.data() + g.off, g.len)) {
        // undo is not possible chunk-wise; whatever went in stays in order, the rest is written now
        size_t in = spill_->bytes() - before;
        return SkipAndWrite(in);
      }
    }
    spilled_ += queued_;
    c_.spill_peak = spill_->peak();
    return true;
  }

  // Memory ran out after `in` bytes of the queued output went into the spill:
  // write the spill, then the rest of the queued output, blocking.
  bool SkipAndWrite(size_t in) {
    if (!Drain(SIZE_MAX, true)) return true;  // failed: Fail() cleared everything
    size_t skip = in;
    std::vector<Seg> rest;
    for (auto& g : segs_) {
      if (skip >= g.len) {
        skip -= g.len;
        continue;
      }
      rest.push_back({g.ring ? g.ring + skip : nullptr, g.ring ? 0 : g.off + skip, g.len - skip});
      skip = 0;
    }
    segs_.swap(rest);
    queued_ -= in;
    WriteQueued();
    return true;  // written (or failed and remembered): nothing queued either way
  }

  // The queued output straight to the fd; what a full pipe refuses goes into the spill.
  bool WriteQueued() {
    std::vector<iovec> iov;
    iov.reserve(segs_.size());
    for (auto& g : segs_) iov.push_back({const_cast<uint8_t*>(g.ring ? g.ring : side_.data() + g.off), g.len});
    size_t i = 0;
    while (i < iov.size()) {
      int n = (int)std::min<size_t>(iov.size() - i, 1024);
      ssize_t w = writev(fd_, &iov[i], n);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          // a full pipe: the rest waits in memory, if it fits
          size_t rest = 0;
          for (size_t k = i; k < iov.size(); k++) rest += iov[k].iov_len;
          if (spill_ && spill_->Fits(rest)) {
            size_t k = i;
            for (; k < iov.size(); k++)
              if (!spill_->Append(static_cast<uint8_t*>(iov[k].iov_base), iov[k].iov_len)) break;
            if (k == iov.size()) {
              spilled_ += rest;
              c_.spill_peak = spill_->peak();
              break;
            }
            // out of memory part way: what went in is written first, then the rest, blocking
            if (!Drain(SIZE_MAX, true)) return false;
            i = k;
          }
          pollfd pfd = {fd_, POLLOUT, 0};
          poll(&pfd, 1, 100);
          continue;
        }
        return Fail(errno);
      }
      written_ += (size_t)w;
      while (i < iov.size() && (size_t)w >= iov[i].iov_len) w -= iov[i++].iov_len;
      if (w > 0) {
        iov[i].iov_base = (uint8_t*)iov[i].iov_base + w;
        iov[i].iov_len -= w;
      }
    }
    Clear();
    return true;
  }

  // A write failed: a file keeps only whole blocks (cut back to the last
  // one written whole), nothing more is written.
  bool Fail(int e) {
    werr_ = e;
    if (regular_ && written_ > whole_ && ftruncate(fd_, base_ + whole_) == 0) lseek(fd_, base_ + whole_, SEEK_SET);
    Clear();
    if (spill_) spill_->Clear();
    return false;
  }

  // Everything queued so far ends with a whole block: remember where that is
  // in the output once written, and tell the write-behind how far the file is.
  void Mark() {
    ends_.push_back(written_ + spilled());
    while (!ends_.empty() && ends_.front() <= written_) {
      whole_ = ends_.front();
      ends_.pop_front();
    }
    if (behind_ && written_ != told_) {
      told_ = written_;
      behind_->Written(base_ + (off_t)written_, busy_);
    }
  }

  // Sends still waiting for records keep their fragments in their own memory.
  void Detach() {
    for (auto& kv : pending_) {
      Pending& pe = *kv.second;
      for (auto& f : pe.frags) {
        if (f.owned) continue;
        std::unique_ptr<uint8_t[]> copy(new uint8_t[f.len]);
        memcpy(copy.get(), f.p, f.len);
        f.p = copy.get();
        f.owned = true;
        pe.stash.push_back(std::move(copy));
      }
    }
  }

  // n bytes at the end of the side buffer, as output (valid until the next Side()).
  uint8_t* Side(size_t n) {
    size_t off = side_.size();
    uint8_t* at = side_.Append(n);
    if (!segs_.empty() && !segs_.back().ring && segs_.back().off + segs_.back().len == off) segs_.back().len += n;
    else segs_.push_back({nullptr, off, n});
    queued_ += n;
    return at;
  }

  void Ring(const uint8_t* p, size_t n) {
    segs_.push_back({p, 0, n});
    queued_ += n;
    ring_segs_++;
  }

  static uint8_t Dir(const unixsock_msg& m) {
    if (m.sock_type != UNIXSOCK_SOCK_DGRAM && m.local_path_len) return 1;
    if (m.local_path_len || m.peer_path_len) return 2;
    return 0;
  }

  static uint32_t PathLen(uint8_t n) { return std::min<uint32_t>(n, UNIXSOCK_PATH_MAX); }

  // Length of the link header's path TLVs.
  static uint32_t PathTlvLen(const unixsock_msg& m) {
    uint32_t n = 0;
    if (m.local_path_len) n += 4 + Pad4(PathLen(m.local_path_len));
    if (m.peer_path_len) n += 4 + Pad4(PathLen(m.peer_path_len));
    return n;
  }

  // The container options of a record's sender and peer (pre-encoded by IdentityTable).
  struct IdTlvs {
    const std::vector<uint8_t>* self = nullptr;
    const std::vector<uint8_t>* peer = nullptr;
    uint32_t len() const { return (self ? self->size() : 0) + (peer ? peer->size() : 0); }
  };
  IdTlvs Ids(const unixsock_msg& m) {
    IdTlvs r;
    if (!ids_) return r;
    if (const auto* e = ids_->Find(m.cgroup_id)) r.self = &e->self;
    if (const auto* e = ids_->Find(m.peer_cgroup_id)) r.peer = &e->peer;
    return r;
  }

  static uint8_t* Tlv(uint8_t* o, uint16_t type, const uint8_t* v, uint32_t len) {
    Be16(o, type);
    Be16(o + 2, (uint16_t)len);
    memcpy(o + 4, v, len);
    memset(o + 4 + len, 0, Pad4(len) - len);
    return o + 4 + Pad4(len);
  }
  // TLVs made from the raw cmsg list as the sender gave it (struct cmsghdr of a
  // 64-bit Linux: u64 len, i32 level, i32 type, data, 8-aligned), whatever
  // the length fields say (the sender wrote them).
  static std::vector<uint8_t> ControlTlvs(const std::vector<uint8_t>& c, bool* malformed) {
    constexpr size_t kHdr = sizeof(cmsghdr);
    static_assert(kHdr == 16 && offsetof(cmsghdr, cmsg_level) == 8 && offsetof(cmsghdr, cmsg_type) == 12,
                  "struct cmsghdr of x86_64 and arm64");
    std::vector<uint8_t> rights, creds, out;
    std::vector<uint8_t> other;
    size_t o = 0;
    *malformed = false;
    while (o + kHdr <= c.size()) {
      uint64_t len;
      int32_t level, type;
      memcpy(&len, &c[o + offsetof(cmsghdr, cmsg_len)], 8);
      memcpy(&level, &c[o + offsetof(cmsghdr, cmsg_level)], 4);
      memcpy(&type, &c[o + offsetof(cmsghdr, cmsg_type)], 4);
      if (len < kHdr || len > c.size() - o) {
        *malformed = true;
        break;
      }
      const uint8_t* data = &c[o + kHdr];
      size_t dlen = len - kHdr;
      if (level == SOL_SOCKET && type == SCM_RIGHTS) {
        for (size_t i = 0; i + 4 <= dlen; i += 4) {
          uint8_t b[4];
          int32_t fd;
          memcpy(&fd, data + i, 4);
          Be32(b, (uint32_t)fd);
          rights.insert(rights.end(), b, b + 4);
        }
      } else if (level == SOL_SOCKET && type == SCM_CREDENTIALS && dlen >= sizeof(ucred)) {  // the last one counts
        creds.assign(12, 0);
        for (int k = 0; k < 3; k++) {
          uint32_t v;
          memcpy(&v, data + 4 * k, 4);
          Be32(&creds[4 * k], v);
        }
      } else if (8 + dlen <= 0xffff) {
        size_t at = other.size();
        other.resize(at + 4 + Pad4(8 + dlen));
        uint8_t* t = &other[at];
        Be16(t, UNIXSOCK_TLV_CMSG_OTHER);
        Be16(t + 2, (uint16_t)(8 + dlen));
        Be32(t + 4, (uint32_t)level);
        Be32(t + 8, (uint32_t)type);
        memcpy(t + 12, data, dlen);
        memset(t + 12 + dlen, 0, Pad4(8 + dlen) - (8 + dlen));
      }
      o += (len + 7) & ~uint64_t(7);
    }
    if (o < c.size() && c.size() - o < kHdr)
      for (size_t i = o; i < c.size(); i++)
        if (c[i]) *malformed = true;
    auto add = [&out](uint16_t type, const std::vector<uint8_t>& v) {
      if (v.empty() || v.size() > 0xffff) return;
      size_t at = out.size();
      out.resize(at + 4 + Pad4(v.size()));
      Tlv(&out[at], type, v.data(), v.size());
    };
    add(UNIXSOCK_TLV_SCM_RIGHTS, rights);
    add(UNIXSOCK_TLV_SCM_CREDENTIALS, creds);
    out.insert(out.end(), other.begin(), other.end());
    return out;
  }

  // The link header at o (hdr_len bytes, TLVs included).
  static void LinkHeader(uint8_t* o, const unixsock_msg& m, uint32_t hdr_len, uint16_t flags, uint32_t offset,
                         const IdTlvs& ids, const std::vector<uint8_t>* ctrl_tlvs) {
    o[LH(version)] = UNIXSOCK_LINK_VERSION;
    o[LH(sock_type)] = m.sock_type;
    Be16(o + LH(header_len), (uint16_t)hdr_len);
    Be16(o + LH(flags), flags);
    o[LH(strategy)] = m.strategy;
    o[LH(reserved1)] = 0;
    Be32(o + LH(pid), m.pid);
    Be32(o + LH(tid), m.tid);
    Be32(o + LH(uid), m.uid);
    Be32(o + LH(gid), m.gid);
    Be32(o + LH(peer_pid), m.peer_pid);
    Be32(o + LH(syscall), m.syscall);
    Be64(o + LH(inode), m.ino);
    Be64(o + LH(peer_inode), m.peer_ino);
    Be32(o + LH(msg_len), m.msg_len);
    Be32(o + LH(offset), offset);
    Be32(o + LH(path_dev), m.path_dev);
    Be32(o + LH(reserved2), 0);
    Be64(o + LH(path_inode), m.path_ino);
    static_assert(sizeof(m.comm) == sizeof(unixsock_link_header::comm), "comm");
    static_assert(sizeof(m.peer_comm) == sizeof(unixsock_link_header::peer_comm), "peer_comm");
    size_t cl = strnlen(m.comm, sizeof(m.comm)), pl = strnlen(m.peer_comm, sizeof(m.peer_comm));
    memset(o + LH(comm), 0, sizeof(m.comm));
    memset(o + LH(peer_comm), 0, sizeof(m.peer_comm));
    memcpy(o + LH(comm), m.comm, cl);
    memcpy(o + LH(peer_comm), m.peer_comm, pl);
    Be64(o + LH(cgroup_id), m.cgroup_id);
    Be64(o + LH(peer_cgroup_id), m.peer_cgroup_id);
    Be32(o + LH(pidns), m.pidns);
    Be32(o + LH(nspid), m.nspid);
    Be32(o + LH(mntns), m.mntns);
    Be32(o + LH(peer_pidns), m.peer_pidns);
    Be32(o + LH(peer_nspid), m.peer_nspid);
    Be32(o + LH(peer_mntns), m.peer_mntns);
    uint8_t* t = o + kFixedLen;
    if (m.local_path_len) t = Tlv(t, UNIXSOCK_TLV_LOCAL_PATH, m.local_path, PathLen(m.local_path_len));
    if (m.peer_path_len)
      t = Tlv(t, m.peer_path_dest == 1 ? UNIXSOCK_TLV_DEST_PATH : UNIXSOCK_TLV_PEER_PATH, m.peer_path,
              PathLen(m.peer_path_len));
    for (const auto* v : {ids.self, ids.peer}) {
      if (v && !v->empty()) {
        memcpy(t, v->data(), v->size());
        t += v->size();
      }
    }
    if (ctrl_tlvs && !ctrl_tlvs->empty()) memcpy(t, ctrl_tlvs->data(), ctrl_tlvs->size());
  }

  // EPB head at o: cap = bytes of packet data that follow.
  void EpbHead(uint8_t* o, uint64_t ts_mono, uint32_t cap, uint32_t orig, uint8_t dir, uint32_t* block_len) const {
    uint64_t wall = ts_mono + (uint64_t)offset_;
    *block_len = 32 + Pad4(cap) + (dir ? 12 : 0);
    Le32(o, 6);
    Le32(o + 4, *block_len);
    Le32(o + 8, 0);
    Le32(o + 12, (uint32_t)(wall >> 32));
    Le32(o + 16, (uint32_t)wall);
    Le32(o + 20, cap);
    Le32(o + 24, orig);
  }

  // Padding, the direction option and the trailing length at o.
  static uint8_t* EpbTail(uint8_t* o, uint32_t cap, uint8_t dir, uint32_t block_len) {
    uint32_t pad = Pad4(cap) - cap;
    memset(o, 0, pad);
    o += pad;
    if (dir) {
      Le32(o, 2 | (4u << 16));  // epb_flags, 4 bytes
      Le32(o + 4, dir);
      Le32(o + 8, 0);  // opt_endofopt
      o += 12;
    }
    Le32(o, block_len);
    return o + 4;
  }

  void Msg(const uint8_t* p, size_t size) {
    if (size < UNIXSOCK_MSG_SIZE) {
      c_.bad++;
      return;
    }
    const auto* rec = reinterpret_cast<const unixsock_msg*>(p);
    auto prev = pending_.find(rec->tid);
    if (prev != pending_.end()) Finish(prev, true);
    // The fields, and the path bytes within their lengths: nothing else of the
    // record is read (inline_data is read in place). A socket pair's 64 B
    // send has 2 of its record's 7 cache lines path bytes the kernel did not
    // write on this turn of the ring; the copy of all 432 bytes (rep movsq on
    // lines the sending CPU had just written) was 13% of the writer's samples
    // at 64 B, and is gone from its profile. Writer CPU per 200k records:
    // 45.9 -> 44.4 ms (medians of 6 interleaved runs, load 2.7-3.6; within
    // their spread: the fields' lines still come from the other CPU).
    unixsock_msg m;
    memcpy(&m, p, offsetof(unixsock_msg, local_path));
    memcpy(m.local_path, rec->local_path, PathLen(m.local_path_len));
    memcpy(m.peer_path, rec->peer_path, PathLen(m.peer_path_len));
    m.flags &= ~UNIXSOCK_F_INLINE;  // the kernel's bit 8 (looked at below); in the link header it is DROPS_BEFORE
    if (drops_before_) {
      drops_before_ = false;
      m.flags |= UNIXSOCK_F_DROPS_BEFORE;
    }
    if (rec->flags & UNIXSOCK_F_INLINE) {
      uint32_t n = std::min<uint32_t>(m.cap_len, UNIXSOCK_INLINE_MAX);
      if (!(m.flags & UNIXSOCK_F_HAS_CTRL)) return Whole(m, rec->inline_data, n);
      // ancillary data follows: wait for it with the payload at hand
      m.cap_len = n;
      auto pe = std::make_unique<Pending>(m);
      if (n) pe->frags.push_back({rec->inline_data, n, false});
      pe->got = n;
      pending_[m.tid] = std::move(pe);
      return;
    }
    if (m.cap_len == 0 && !(m.flags & UNIXSOCK_F_HAS_CTRL)) return Whole(m, nullptr, 0);
    pending_[m.tid] = std::make_unique<Pending>(m);
  }

  // Identity records (sock_type 0, docs/link-header.md): the names of
  // containers whose records went out before user space had answered, so
  // that a reader of the file (or a live Wireshark) can name those records too.
  void Identities() {
    std::vector<uint64_t> late = ids_->Sync();
    Names(ids_->TakeNames());
    if (late.empty()) return;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t ts = (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
    for (uint64_t cg : late) {
      const IdentityTable::Entry* e = ids_->Find(cg);
      if (!e) continue;
      unixsock_msg m;
      memset(&m, 0, sizeof(m));
      m.cgroup_id = cg;
      IdTlvs ids;
      ids.self = &e->self;
      uint32_t hdr = kFixedLen + ids.len(), block;
      uint8_t* o = Side(32 + hdr);
      EpbHead(o, ts, hdr, hdr, 0, &block);
      LinkHeader(o + kEpbHead, m, hdr, 0, 0, ids, nullptr);
      EpbTail(o + kEpbHead + hdr, hdr, 0, block);
      c_.packets++;
    }
  }

  // A name resolution block (pcapng block type 4) naming the stream view's
  // address of each cgroup (docs/link-header.md): an nrb_record_ipv6 (type
  // 2) per name, 16 address bytes then the name and its NUL, padded to 4;
  // the end-of-records record; no options. Wireshark reads such blocks
  // wherever they are in the file, also mid-capture through dumpcap.
  void Names(const std::vector<std::pair<uint64_t, std::string>>& names) {
    if (names.empty()) return;
    uint32_t body = 4;  // nrb_record_end
    for (const auto& nm : names) body += 4 + Pad4(16 + (uint32_t)nm.second.size() + 1);
    uint32_t len = 8 + body + 4;
    uint8_t* o = Side(len);
    Le32(o, 4);
    Le32(o + 4, len);
    o += 8;
    for (const auto& nm : names) {
      uint32_t v = 16 + (uint32_t)nm.second.size() + 1;
      o[0] = 2;  // nrb_record_ipv6, little-endian like every field of this writer's blocks
      o[1] = 0;
      o[2] = (uint8_t)v;
      o[3] = (uint8_t)(v >> 8);
      Be32(o + 4, UNIXSOCK_VIEW_PREFIX_HI);
      Be32(o + 8, UNIXSOCK_VIEW_PREFIX_LO);
      Be64(o + 12, nm.first);
      memcpy(o + 20, nm.second.data(), nm.second.size());
      memset(o + 20 + nm.second.size(), 0, Pad4(v) - v + 1);
      o += 4 + Pad4(v);
    }
    memset(o, 0, 4);  // nrb_record_end
    Le32(o + 4, len);
  }

  // A send whose payload is at hand (at most UNIXSOCK_INLINE_MAX bytes): one block.
  void Whole(const unixsock_msg& m, const uint8_t* payload, uint32_t n) {
    IdTlvs ids = Ids(m);
    uint32_t hdr = kFixedLen + PathTlvLen(m) + ids.len();
    uint8_t dir = Dir(m);
    uint32_t cap = hdr + n, block;
    uint8_t* o = Side(32 + Pad4(cap) + (dir ? 12 : 0));
    EpbHead(o, m.ts, cap, hdr + std::max(m.msg_len, n), dir, &block);
    LinkHeader(o + kEpbHead, m, hdr, m.flags, 0, ids, nullptr);
    if (n) memcpy(o + kEpbHead + hdr, payload, n);
    EpbTail(o + kEpbHead + cap, cap, dir, block);
    c_.packets++;
    c_.messages++;
  }

  // Output for payload bytes [off, off + n) of a send made of frags: pointed
  // at where they are, or copied into the side buffer.
  void Payload(const std::vector<Frag>& frags, uint32_t off, uint32_t n, bool copy) {
    uint32_t at = 0;
    for (const auto& f : frags) {
      if (n == 0) break;
      if (at + f.len <= off) {
        at += f.len;
        continue;
      }
      uint32_t skip = off > at ? off - at : 0;
      uint32_t take = std::min(f.len - skip, n);
      if (copy) memcpy(Side(take), f.p + skip, take);
      else Ring(f.p + skip, take);
      off += take;
      n -= take;
      at += f.len;
    }
  }

  // One send, whole or with what arrived of it: as many blocks as it needs.
  void Finish(PendingMap::iterator it, bool lost) {
    std::unique_ptr<Pending> pe = std::move(it->second);
    pending_.erase(it);
    if (limit_reached()) return;
    unixsock_msg& m = pe->msg;
    uint16_t flags = m.flags;
    if (lost || pe->got < m.cap_len) {
      flags |= UNIXSOCK_F_LOST;
      c_.incomplete++;
    }
    c_.messages++;
    bool malformed = false;
    std::vector<uint8_t> ctrl_tlvs;
    if (!pe->ctrl.empty()) ctrl_tlvs = ControlTlvs(pe->ctrl, &malformed);
    if (malformed) flags |= UNIXSOCK_F_CTRL_MALFORMED;
    IdTlvs ids = Ids(m);
    uint32_t plain = kFixedLen + PathTlvLen(m) + ids.len();
    uint8_t dir = Dir(m);
    uint32_t total = pe->got, off = 0;
    do {
      uint32_t hdr = off == 0 ? plain + (uint32_t)ctrl_tlvs.size() : plain;
      uint32_t n = std::min(kMaxBlock - kEpbOverhead - hdr, total - off);
      bool more = off + n < total;
      uint32_t cap = hdr + n, block;
      // the bytes this record stands for: all that remains of the send on the last one
      uint32_t orig = hdr + (more ? n : std::max(m.msg_len - std::min(m.msg_len, off), n));
      uint8_t* o = Side(kEpbHead + hdr);
      EpbHead(o, m.ts, cap, orig, dir, &block);
      uint16_t f = (off == 0 ? flags : flags & ~UNIXSOCK_F_DROPS_BEFORE) | (more ? UNIXSOCK_F_MORE : 0);
      LinkHeader(o + kEpbHead, m, hdr, f, off, ids, off == 0 ? &ctrl_tlvs : nullptr);
      // fragments copied out earlier (Detach) end with pe: theirs go in the side buffer
      Payload(pe->frags, off, n, !pe->stash.empty());
      EpbTail(Side(block - kEpbHead - cap), cap, dir, block);
      c_.packets++;
      off += n;
    } while (off < total);
  }

  int fd_;
  int64_t offset_;
  uint64_t limit_;
  bool regular_ = false;
  bool pipe_ = false;
  bool busy_ = false;                    // the ring is filling up (the last Write() was told so)
  bool drops_before_ = false;            // the next send begins after a drop
  int fl_ = -1;                          // a pipe's file status flags before this writer made it non-blocking
  off_t base_ = 0;                       // file offset where this writer started
  size_t written_ = 0;                   // bytes written since base_
  size_t whole_ = 0;                     // of those, up to the end of the last whole block
  size_t told_ = 0;                      // what the write-behind was last told
  size_t spilled_ = 0;                   // bytes that went through the spill (for the log)
  std::deque<size_t> ends_;              // output offsets (written + spilled) where whole blocks end
  std::unique_ptr<Spill> spill_;         // pipes only
  std::unique_ptr<WriteBehind> behind_;  // regular files only
  int werr_ = 0;
  Counters c_;
  IdentityTable* ids_ = nullptr;
  PendingMap pending_;
  std::vector<Seg> segs_;
  size_t ring_segs_ = 0;
  Buf side_;
  size_t queued_ = 0;
  std::vector<uint8_t> mem_;  // kMemory: blocks written, not yet taken
};

}  // namespace unixsock

#undef LH

#endif  // UNIXSOCK_PCAPNG_OUT_H
