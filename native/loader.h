// The loader: opens the BPF skeleton with the settings and filters in its
// read-only data, and loads and attaches the first attach strategy that works
// on this kernel (or the one asked for). Strategies are a table of the
// skeleton's program pointers (loader.cc), so a renamed program is a compile
// error. No JavaScript here: native/capture.cc turns the result into objects.
#ifndef UNIXSOCK_LOADER_H
#define UNIXSOCK_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <string>
#include <vector>

extern "C" {
#include <linux/types.h>
#include "unixsock.h"
}

#include "ring.h"

struct unixsock_bpf;
struct bpf_link;

namespace unixsock {

// One strategy tried: ok, with notes (optional programs left out), or the reason it failed.
struct Attempt {
  std::string strategy;
  bool ok;
  std::string text;
};

// The loaded and attached probes; destroying it detaches every program and frees every map.
class Probes {
 public:
  // ring_fd: the loader's own descriptor of the ring map (the one a Ring it
  // mapped holds), closed with the probes; -1 if none
  Probes(unixsock_bpf* skel, std::vector<bpf_link*> links, int ring_fd)
      : skel_(skel), links_(std::move(links)), own_ring_fd_(ring_fd) {}
  Probes(const Probes&) = delete;
  Probes& operator=(const Probes&) = delete;
  ~Probes();
  int ring_fd() const;
  size_t ring_size() const;
  // the per-CPU counters in the object's .bss, mapped at load (read without a bpf() call)
  const volatile unixsock_stat_line* stat_lines() const;

 private:
  unixsock_bpf* skel_;
  std::vector<bpf_link*> links_;
  int own_ring_fd_;
};

// Tries the strategies in the order of enum unixsock_strategy (only `forced`
// when it names one), each attempt appended to *attempts. Runs with the
// capabilities raised (the caller's job). nullptr when none works.
// *timings: the milliseconds of each phase ("btf 21, open 3, load 58, ...").
// *ring is mapped beside the loading (Ring::Open) when it can be; if it is
// still closed on return, opening it on Probes::ring_fd() is the caller's job.
Probes* LoadProbes(const unixsock_filter& filter, uint32_t ring_bytes, const std::string& forced,
                   std::vector<Attempt>* attempts, std::string* timings, Ring* ring);

// libbpf's messages: the full output (verifier logs included) also goes to
// this file when set (the log file JavaScript opened).
void SetLibbpfDebugLog(FILE* f);
bool HasLibbpfDebugLog();

}  // namespace unixsock

#endif  // UNIXSOCK_LOADER_H
