// Container names for the pcapng writer: cgroup id -> the header options
// (CONTAINER_ID, CONTAINER_NAME and their PEER_ twins, bpf/unixsock.h) that
// records of that cgroup carry. JavaScript resolves ids (src/identity.ts: the
// cgroup tree, the runtime's API socket) and hands the answers over with
// Set(); the worker thread asks Find() for every record and never waits:
// an id not known yet is queued for JavaScript (TakeUnknown) and its records
// go out with the numeric ids only until the answer is in. The worker keeps
// its own map, refreshed from the shared one under the lock only when Set()
// has added something (one atomic load per batch otherwise).
#ifndef UNIXSOCK_IDENTITY_H
#define UNIXSOCK_IDENTITY_H

#include <stdint.h>
#include <string.h>

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

extern "C" {
#include <linux/types.h>
#include "unixsock.h"
}

namespace unixsock {

// Bounds: an id or name longer than this is cut (ids are 64 hex digits, Docker names far shorter).
constexpr size_t kIdentityStrMax = 128;
// Cgroups remembered; past this the table stops growing (a host with more containers than this
// gets names for the first ones only) instead of growing without end on hostile input.
constexpr size_t kIdentityMax = 65536;

class IdentityTable {
 public:
  struct Entry {
    std::vector<uint8_t> self;  // CONTAINER_ID (+ CONTAINER_NAME) TLVs, empty: a host cgroup
    std::vector<uint8_t> peer;  // the same as PEER_CONTAINER_*
  };

  // JavaScript's thread: what cgroup id is (empty id: not a container).
  void Set(uint64_t cgid, const std::string& id, const std::string& name) {
    Entry e;
    if (!id.empty()) {
      e.self = Tlvs(UNIXSOCK_TLV_CONTAINER_ID, UNIXSOCK_TLV_CONTAINER_NAME, id, name);
      e.peer = Tlvs(UNIXSOCK_TLV_PEER_CONTAINER_ID, UNIXSOCK_TLV_PEER_CONTAINER_NAME, id, name);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (shared_.size() >= kIdentityMax && !shared_.count(cgid)) return;
    shared_[cgid] = std::move(e);
    changed_.store(true, std::memory_order_release);
  }

  // JavaScript's thread: ids the writer met and nobody has answered yet.
  std::vector<uint64_t> TakeUnknown() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> r;
    r.swap(unknown_);
    return r;
  }

  // The worker: pick up what Set() added. Returns the containers answered
  // since the last call whose records already went out without their names
  // (the writer then writes an identity record for each).
  std::vector<uint64_t> Sync() {
    std::vector<uint64_t> late;
    if (!changed_.load(std::memory_order_acquire)) return late;
    std::lock_guard<std::mutex> lock(mu_);
    changed_.store(false, std::memory_order_relaxed);
    for (const auto& kv : shared_) {
      auto old = local_.find(kv.first);
      bool news = old == local_.end() || old->second.self != kv.second.self;
      if (news && !kv.second.self.empty() && asked_.count(kv.first)) late.push_back(kv.first);
    }
    local_ = shared_;
    return late;
  }

  // The worker: the entry of cgid, or nullptr (not known yet: asked once).
  const Entry* Find(uint64_t cgid) {
    if (!cgid) return nullptr;
    auto it = local_.find(cgid);
    if (it != local_.end()) return &it->second;
    if (asked_.size() < kIdentityMax && asked_.insert(cgid).second) {
      std::lock_guard<std::mutex> lock(mu_);
      unknown_.push_back(cgid);
    }
    return nullptr;
  }

 private:
  static void Put(std::vector<uint8_t>& out, uint16_t type, const std::string& v) {
    size_t n = std::min(v.size(), kIdentityStrMax);
    size_t pad = (4 - n % 4) % 4;
    size_t at = out.size();
    out.resize(at + 4 + n + pad, 0);
    out[at] = type >> 8;
    out[at + 1] = type & 0xff;
    out[at + 2] = (uint8_t)(n >> 8);
    out[at + 3] = (uint8_t)n;
    memcpy(&out[at + 4], v.data(), n);
  }
  static std::vector<uint8_t> Tlvs(uint16_t id_type, uint16_t name_type, const std::string& id,
                                   const std::string& name) {
    std::vector<uint8_t> out;
    Put(out, id_type, id);
    if (!name.empty()) Put(out, name_type, name);
    return out;
  }

  std::mutex mu_;
  std::atomic<bool> changed_{false};
  std::unordered_map<uint64_t, Entry> shared_;  // under mu_
  std::vector<uint64_t> unknown_;               // under mu_
  std::unordered_map<uint64_t, Entry> local_;   // the worker's
  std::unordered_set<uint64_t> asked_;          // the worker's
};

}  // namespace unixsock

#endif  // UNIXSOCK_IDENTITY_H
