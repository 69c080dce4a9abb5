// Capabilities of a capture run by a member of the capture group (an executable
// with file capabilities, a non-root uid). See docs/threat-model.md.
//
//   AtLoad()   when the addon is loaded: the effective set is cleared (the
//              permitted set is kept), so that every file this process opens
//              afterwards (-w, --fifo, --log-file, the libbpf debug log) is
//              opened with the invoking user's rights only;
//   Raised     in scope: CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels
//              before 5.8) effective again, around loading, attaching and
//              mapping the ring;
//   DropAll()  afterwards: effective, permitted, inheritable and ambient sets
//              emptied in every thread of the process, which stays
//              non-dumpable.
//
// Capabilities belong to threads, not processes, and Node has threads of its
// own (V8's platform workers, the inspector's signal watchdog) that were
// started with the file's capabilities before the addon was loaded. DropAll()
// makes each of them call capset() from a signal handler, then reads every
// thread's /proc/self/task/TID/status to check that none holds anything.
//
// root (uid 0) is left as it is: dropping capabilities would not make uid 0 an
// ordinary user (it still owns the system's files).
#ifndef UNIXSOCK_PRIVILEGE_H
#define UNIXSOCK_PRIVILEGE_H

#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace unixsock {
namespace priv {

struct Caps {
  uint64_t eff = 0, prm = 0, inh = 0;
};

inline bool GetCaps(Caps* c) {
  __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  if (syscall(SYS_capget, &h, d) != 0) return false;
  c->eff = d[0].effective | (uint64_t)d[1].effective << 32;
  c->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
  c->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
  return true;
}

// Async-signal-safe (a raw system call): also used by the signal handler.
inline bool SetCaps(const Caps& c) {
  __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  d[0].effective = (uint32_t)c.eff;
  d[1].effective = (uint32_t)(c.eff >> 32);
  d[0].permitted = (uint32_t)c.prm;
  d[1].permitted = (uint32_t)(c.prm >> 32);
  d[0].inheritable = (uint32_t)c.inh;
  d[1].inheritable = (uint32_t)(c.inh >> 32);
  return syscall(SYS_capset, &h, d) == 0;
}

constexpr uint64_t Bit(int cap) { return 1ull << cap; }
// CAP_BPF (39) and CAP_PERFMON (38) are missing from old headers
constexpr uint64_t kCaptureCaps = Bit(39) | Bit(38) | Bit(CAP_SYS_ADMIN);

struct State {
  bool managed = false;  // a non-root process that holds capabilities
  bool dropped = false;
  uint64_t permitted = 0;
};

inline State& St() {
  static State s;
  return s;
}

// Called once, when the addon is loaded (on the JavaScript thread).
inline void AtLoad() {
  State& s = St();
  Caps c;
  if (getuid() == 0 || !GetCaps(&c) || (c.prm | c.eff) == 0) return;
  s.managed = true;
  s.permitted = c.prm;
  c.eff = 0;
  if (!SetCaps(c)) {
    // cannot happen (lowering is always allowed), but never go on with them
    fprintf(stderr, "unixsock: cannot clear the effective capabilities: %s\n", strerror(errno));
    _exit(1);
  }
}

// CAP_BPF/CAP_PERFMON (or CAP_SYS_ADMIN) effective for the scope's lifetime.
class Raised {
 public:
  Raised() {
    State& s = St();
    if (!s.managed || s.dropped) return;
    Caps c;
    if (!GetCaps(&c)) return;
    c.eff = c.prm & kCaptureCaps;
    active_ = SetCaps(c);
  }
  ~Raised() {
    if (!active_) return;
    Caps c;
    if (GetCaps(&c)) {
      c.eff = 0;
      SetCaps(c);
    }
  }
  Raised(const Raised&) = delete;
  Raised& operator=(const Raised&) = delete;

 private:
  bool active_ = false;
};

inline std::atomic<int>& Handled() {
  static std::atomic<int> n{0};
  return n;
}

inline void DropInThisThread() {
  Caps none;
  SetCaps(none);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

inline void OnDropSignal(int) {
  int saved = errno;
  DropInThisThread();
  Handled().fetch_add(1);
  errno = saved;
}

// Capabilities any thread of this process still holds ("" when none), from
// /proc/self/task/*/status (CapEff, CapPrm, CapAmb).
inline std::string HeldByAnyThread() {
  DIR* d = opendir("/proc/self/task");
  if (!d) return "cannot read /proc/self/task";
  std::string held;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string file = std::string("/proc/self/task/") + e->d_name + "/status";
    FILE* f = fopen(file.c_str(), "re");
    if (!f) continue;  // the thread has ended
    char line[256];
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "CapEff:", 7) && strncmp(line, "CapPrm:", 7) && strncmp(line, "CapAmb:", 7)) continue;
      if (strtoull(line + 7, nullptr, 16) != 0) {
        held = std::string("thread ") + e->d_name + " " + std::string(line, 6);
        break;
      }
    }
    fclose(f);
    if (!held.empty()) break;
  }
  closedir(d);
  return held;
}

// The kernel's struct sigaction (rt_sigaction(2) on x86_64 and arm64).
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

// glibc's SIGSETXID (the signal its set*id() wrappers use to run the same
// system call in every thread): glibc never lets a thread block it, and Node
// has a thread that blocks every other signal (the inspector's SIGUSR1
// watchdog, measured: SigBlk fffffffe7ffbfeff).
constexpr int kSetxidSignal = 33;
constexpr unsigned long kSaRestorer = 0x04000000;  // SA_RESTORER (not exported by glibc's headers)

// Empties every capability set of every thread and keeps the process
// non-dumpable. Returns "" or why it failed (the caller must not go on).
// The signal's handler is borrowed from glibc for the broadcast and given back
// (nothing in this process calls set*id() meanwhile: no setuid() anywhere).
inline std::string DropAll() {
  State& s = St();
  if (!s.managed || s.dropped) return "";
  s.dropped = true;
  KernelSigaction glibc = {}, ours = {};
  if (syscall(SYS_rt_sigaction, kSetxidSignal, nullptr, &glibc, 8) != 0 || !(glibc.flags & kSaRestorer))
    return "cannot reach every thread to drop capabilities (no SIGSETXID handler)";
  ours.handler = OnDropSignal;
  ours.flags = kSaRestorer | SA_RESTART;
  ours.restorer = glibc.restorer;  // the kernel returns from a handler through it
  ours.mask = ~0ull;
  syscall(SYS_rt_sigaction, kSetxidSignal, &ours, nullptr, 8);
  DropInThisThread();
  pid_t self = (pid_t)syscall(SYS_gettid), pid = getpid();
  std::set<long> asked;
  // threads may start while we ask (from a thread that still holds them):
  // list again until no new one appears
  for (int round = 0; round < 20; round++) {
    int sent = 0;
    DIR* d = opendir("/proc/self/task");
    if (!d) break;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      long tid = atol(e->d_name);
      if (tid == self || asked.count(tid)) continue;
      asked.insert(tid);
      if (syscall(SYS_tgkill, pid, tid, kSetxidSignal) == 0) sent++;
      else Handled().fetch_add(1);  // ended meanwhile
    }
    closedir(d);
    if (!sent) break;
    for (int i = 0; i < 2000 && Handled().load() < (int)asked.size(); i++) usleep(1000);
  }
  bool all = Handled().load() >= (int)asked.size();
  if (all) syscall(SYS_rt_sigaction, kSetxidSignal, &glibc, nullptr, 8);
  // (if a thread never answered, our handler stays: a late delivery then drops
  // that thread's capabilities instead of reaching glibc's with no request)
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  std::string held = HeldByAnyThread();
  if (!held.empty()) return "capabilities remain after dropping them (" + held + ")";
  return "";
}

}  // namespace priv
}  // namespace unixsock

#endif  // UNIXSOCK_PRIVILEGE_H
