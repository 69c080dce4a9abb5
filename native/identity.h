// Container names for the pcapng writer: cgroup id -> the header options
// (CONTAINER_ID, CONTAINER_NAME and their PEER_ twins, bpf/unixsock.h) that
// records of that cgroup carry. JavaScript resolves ids (src/identity.ts: the
// cgroup tree, the runtime's API socket) and hands the answers over with
// Set(); the worker thread asks Find() for every record and never waits:
// an id not known yet is queued for JavaScript (TakeUnknown) and its records
// go out with the numeric ids only until the answer is in. The worker keeps
// its own map, refreshed from the shared one under the lock only when Set()
// has added something (one atomic load per batch otherwise).
//
// It also names each cgroup the writer meets for Wireshark's name
// resolution: the stream view's address of a cgroup (the prefix of
// bpf/unixsock.h, then the cgroup id) gets the container's name (else its
// short id), or "host:" and the cgroup path for a host cgroup; the writer
// puts those in pcapng name resolution blocks (TakeNames). The names come
// from the runtime's API and from cgroup paths, which a container may choose:
// they are bounded and escaped here (ViewName) before they reach a file.
#ifndef UNIXSOCK_IDENTITY_H
#define UNIXSOCK_IDENTITY_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
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
// Longest name in a name resolution block: Wireshark 4.0 and 4.4 keep 63
// bytes of a host name and cut the rest (4.6 keeps 255; checked with
// tshark -z endpoints,ipv6 on each): at most 63, every version shows the
// same name, and a path cut here keeps its most specific end.
constexpr size_t kViewNameMax = 63;
// The name of the address of cgroup id 0 (a peer whose cgroup is not known).
constexpr const char* kUnknownName = "unknown";

class IdentityTable {
 public:
  struct Entry {
    std::vector<uint8_t> self;  // CONTAINER_ID (+ CONTAINER_NAME) TLVs, empty: a host cgroup
    std::vector<uint8_t> peer;  // the same as PEER_CONTAINER_*
    std::string view;           // the name of its address in the stream view ('': none)
    bool named = false;         // the worker's: view written (or queued) for this entry
  };

  // JavaScript's thread: what cgroup id is (empty id: not a container; path:
  // its cgroup v2 path, '' when not found).
  void Set(uint64_t cgid, const std::string& id, const std::string& name, const std::string& path = "") {
    Entry e;
    if (!id.empty()) {
      e.self = Tlvs(UNIXSOCK_TLV_CONTAINER_ID, UNIXSOCK_TLV_CONTAINER_NAME, id, name);
      e.peer = Tlvs(UNIXSOCK_TLV_PEER_CONTAINER_ID, UNIXSOCK_TLV_PEER_CONTAINER_NAME, id, name);
    }
    e.view = ViewName(id, name, path, cgid);
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
      if (old != local_.end() && old->second.self == kv.second.self && old->second.view == kv.second.view) continue;
      // a new or changed answer: its name goes out now if the writer met the
      // cgroup already (it may send no more records), else at its first record
      bool met = asked_.count(kv.first) || (old != local_.end() && old->second.named);
      Entry& e = local_[kv.first];
      e = kv.second;
      e.named = met;
      if (met && !e.view.empty()) names_.emplace_back(kv.first, e.view);
    }
    return late;
  }

  // The worker: names of stream-view addresses to write since the last call
  // (cgroup id, name); the first call also names cgroup 0's ("unknown").
  std::vector<std::pair<uint64_t, std::string>> TakeNames() {
    if (!unknown_named_) {
      unknown_named_ = true;
      names_.emplace_back(0, kUnknownName);
    }
    std::vector<std::pair<uint64_t, std::string>> r;
    r.swap(names_);
    return r;
  }

  // The worker: the entry of cgid, or nullptr (not known yet: asked once).
  const Entry* Find(uint64_t cgid) {
    if (!cgid) return nullptr;
    auto it = local_.find(cgid);
    if (it != local_.end()) {
      Entry& e = it->second;
      if (!e.named) {
        e.named = true;
        if (!e.view.empty()) names_.emplace_back(cgid, e.view);
      }
      return &e;
    }
    if (asked_.size() < kIdentityMax && asked_.insert(cgid).second) {
      std::lock_guard<std::mutex> lock(mu_);
      unknown_.push_back(cgid);
    }
    return nullptr;
  }

  // The name of a cgroup's stream-view address: a container's name, else its
  // id (64 hex digits shortened to 12, as docker ps does), else "host:" and
  // the cgroup path; "cgroup:" and the id when nothing is known (named all
  // the same, so that no address of the file is left for a resolver to look
  // up). Every byte outside printable ASCII (controls, escape sequences for a
  // terminal that shows tshark's output, NUL, non-ASCII) becomes \xNN; at
  // most kViewNameMax bytes: a container's name keeps its start, a path its
  // end (the most specific part), the cut marked with "...".
  static std::string ViewName(const std::string& id, const std::string& name, const std::string& path, uint64_t cgid) {
    std::string raw;
    bool tail = false;
    if (!name.empty()) raw = name;
    else if (id.size() == 64) raw = id.substr(0, 12);
    else if (!id.empty()) raw = id;
    else if (!path.empty()) {
      raw = "host:" + path;
      tail = true;
    } else {
      return "cgroup:" + std::to_string(cgid);
    }
    std::vector<std::string> parts;  // one per input byte, escaped
    parts.reserve(raw.size());
    for (unsigned char ch : raw) {
      if (ch > 0x20 && ch < 0x7f) {
        parts.emplace_back(1, (char)ch);
      } else {
        char esc[5];
        snprintf(esc, sizeof esc, "\\x%02x", ch);
        parts.emplace_back(esc);
      }
    }
    size_t total = 0;
    for (const auto& p : parts) total += p.size();
    if (total <= kViewNameMax) {
      std::string out;
      for (const auto& p : parts) out += p;
      return out;
    }
    // cut on a whole escaped byte: "..." and as many parts as fit
    const size_t room = kViewNameMax - 3;
    std::string kept;
    size_t n = 0;
    if (tail) {
      size_t i = parts.size();
      while (i > 0 && n + parts[i - 1].size() <= room) n += parts[--i].size();
      for (; i < parts.size(); i++) kept += parts[i];
      return "..." + kept;
    }
    for (size_t i = 0; i < parts.size() && n + parts[i].size() <= room; i++) {
      n += parts[i].size();
      kept += parts[i];
    }
    return kept + "...";
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
  std::unordered_map<uint64_t, Entry> shared_;           // under mu_
  std::vector<uint64_t> unknown_;                        // under mu_
  std::unordered_map<uint64_t, Entry> local_;            // the worker's
  std::unordered_set<uint64_t> asked_;                   // the worker's
  std::vector<std::pair<uint64_t, std::string>> names_;  // the worker's: names to write
  bool unknown_named_ = false;                           // the worker's
};

}  // namespace unixsock

#endif  // UNIXSOCK_IDENTITY_H
