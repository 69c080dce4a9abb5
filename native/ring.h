// A BPF ring buffer read in place. libbpf's ring_buffer__consume() gives the
// space of each record back to the kernel as soon as its callback returns, so
// a writer must copy every payload out first. Here the reader decides when
// space goes back (Release()): the pcapng writer points writev() straight at
// payloads in the ring and releases them once they are written, so a 64 KiB
// payload is copied once in user space (by the kernel, into the file).
//
// Layout (kernel/bpf/ringbuf.c, the same that libbpf maps): one page holding
// the consumer position (read-write), then one page with the producer
// position followed by the data area mapped twice in a row (read-only), so a
// record that wraps around the end is still contiguous in memory. Each record
// has an 8-byte header: u32 length with BUSY (not yet submitted) and DISCARD
// bits, u32 page offset; records are 8-byte aligned.
#ifndef UNIXSOCK_RING_H
#define UNIXSOCK_RING_H

#include <errno.h>
#include <linux/bpf.h>
#include <poll.h>

#include <algorithm>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

namespace unixsock {

class Ring {
 public:
  // map_fd: a BPF_MAP_TYPE_RINGBUF of size bytes (a power of two). Returns 0 or -errno.
  int Open(int map_fd, size_t size) {
    page_ = (size_t)sysconf(_SC_PAGESIZE);
    fd_ = map_fd;
    size_ = size;
    void* c = mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (c == MAP_FAILED) return -errno;
    cons_map_ = c;
    // No MAP_POPULATE: the kernel's ring mmap (remap_vmalloc_range) already
    // maps every page, so reading all 2 x 64 MiB afterwards takes < 1 ms (no
    // faults), and MAP_POPULATE only walked the mapped pages again: 13-15 ms
    // instead of 7-8 for this mmap, measured on the 6.18 host.
    void* p = mmap(nullptr, page_ + 2 * size_, PROT_READ, MAP_SHARED, fd_, page_);
    if (p == MAP_FAILED) {
      int e = -errno;
      Close();
      return e;
    }
    prod_map_ = p;
    consumer_ = static_cast<unsigned long*>(cons_map_);
    producer_ = static_cast<unsigned long*>(prod_map_);
    data_ = static_cast<uint8_t*>(prod_map_) + page_;
    read_ = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
    return 0;
  }

  bool is_open() const { return prod_map_ != nullptr; }

  void Close() {
    if (cons_map_) munmap(cons_map_, page_);
    if (prod_map_) munmap(prod_map_, page_ + 2 * size_);
    cons_map_ = prod_map_ = nullptr;
  }

  ~Ring() { Close(); }

  // Waits up to ms for the kernel's wakeup. Returns <0 (-errno) on failure.
  // The ring's poll says only "the kernel has records not given back", so
  // while we hold records (or the next one is still being written) it would
  // return at once and the caller would spin: then this sleeps a short while.
  int Wait(int ms) {
    if (__atomic_load_n(producer_, __ATOMIC_ACQUIRE) != __atomic_load_n(consumer_, __ATOMIC_RELAXED)) {
      poll(nullptr, 0, std::min(ms, 1));
      return 0;
    }
    pollfd p = {fd_, POLLIN, 0};
    int n = poll(&p, 1, ms);
    return n < 0 && errno != EINTR ? -errno : 0;
  }

  // Calls fn(record, length) for the submitted records not read yet, up to
  // about max_bytes of them; the records stay valid until Release(). Returns
  // how many bytes of the ring it went past (discarded records included).
  template <typename Fn>
  size_t Read(Fn&& fn, size_t max_bytes = SIZE_MAX) {
    unsigned long start = read_;
    unsigned long prod = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
    unsigned long stop = max_bytes < prod - read_ ? read_ + max_bytes : prod;
    while (read_ < stop) {
      const uint8_t* hdr = data_ + (read_ & (size_ - 1));
      uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t*>(hdr), __ATOMIC_ACQUIRE);
      if (len & BPF_RINGBUF_BUSY_BIT) break;  // reserved, not submitted yet: records stay in order
      uint32_t body = len & ~(uint32_t)(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
      if (!(len & BPF_RINGBUF_DISCARD_BIT)) fn(hdr + BPF_RINGBUF_HDR_SZ, (size_t)body);
      read_ += (body + BPF_RINGBUF_HDR_SZ + 7) & ~7ul;
    }
    return read_ - start;
  }

  // Gives the kernel back the space of every record read so far.
  void Release() { __atomic_store_n(consumer_, read_, __ATOMIC_RELEASE); }

  // Where the kernel will put its next record, and where the record being
  // read (inside Read's callback) or the next one to read is.
  unsigned long Produced() const { return __atomic_load_n(producer_, __ATOMIC_ACQUIRE); }
  unsigned long Position() const { return read_; }

  // Bytes the kernel holds for us: submitted or reserved, not given back.
  size_t Used() const {
    return __atomic_load_n(producer_, __ATOMIC_ACQUIRE) - __atomic_load_n(consumer_, __ATOMIC_RELAXED);
  }

  // Bytes read and not released yet.
  size_t Held() const { return read_ - __atomic_load_n(consumer_, __ATOMIC_RELAXED); }

 private:
  int fd_ = -1;
  size_t page_ = 4096, size_ = 0;
  void* cons_map_ = nullptr;
  void* prod_map_ = nullptr;
  unsigned long* consumer_ = nullptr;
  unsigned long* producer_ = nullptr;
  uint8_t* data_ = nullptr;
  unsigned long read_ = 0;
};

}  // namespace unixsock

#endif  // UNIXSOCK_RING_H
