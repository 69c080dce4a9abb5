// How the capture's writer thread (capture.cc) is scheduled.
//
// What lost data in bulk transfers was the writer waiting for a CPU: runnable,
// preempted, while the 64 MiB ring covered 30-130 ms of the burst (260 of 272
// switch-outs "still runnable"; not dirty-page throttling, no
// balance_dirty_pages event). nice -10 helped only where the sender shares the
// writer's task group: with autogroup (CONFIG_SCHED_AUTOGROUP, on here and in
// most distributions' kernels) every session is a group of its own, weighted
// as one, and a nice value counts only inside its group. Wireshark and the
// program it traces are in different sessions. 1 GB of 4 KiB writes into
// `tshark -i`, the sender in a session of its own (setsid), load 3-9: at nice
// -10 the writer waited 0.7-1.3 s for a CPU and 3 of 3 runs dropped (17k-106k
// messages); as SCHED_FIFO 1 it waited 1-51 ms and 7 of 8 runs were lossless
// (686 dropped in the other).
//
// So the writer asks for SCHED_FIFO at priority 1, the lowest real-time
// priority (audio servers and threaded interrupts stay above it); where that
// is refused, nice -10; where that is refused too, it stays as it was. Both
// need root, CAP_SYS_NICE, or (SCHED_FIFO) an RLIMIT_RTPRIO of 1 or more, as
// limits.conf gives an audio group. A kernel with real-time group scheduling
// also refuses SCHED_FIFO in a cpu cgroup given no real-time runtime (a
// cgroup v1 service's default), root or not: EPERM, then nice -10.
//
// A real-time thread that never sleeps takes its CPU from everything but
// other real-time threads (the kernel leaves others 5%: sched_rt_runtime_us).
// Three guards against a loop that never ends:
//  - the writer sleeps whenever the ring has nothing for it (Ring::Wait), and
//    in a long backlog it pauses briefly every kPauseEvery of work (Pace());
//  - RLIMIT_RTTIME (the CPU time a real-time thread may use without sleeping)
//    is kRtTimeSoft: beyond it the kernel sends SIGXCPU, on which the capture
//    puts the writer back to normal scheduling (Demote(), from JavaScript);
//  - at kRtTimeHard the kernel kills the process (if JavaScript could not act).
// Children never inherit it (SCHED_RESET_ON_FORK).
#ifndef UNIXSOCK_WRITER_SCHED_H
#define UNIXSOCK_WRITER_SCHED_H

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace unixsock {

constexpr int kWriterRtPriority = 1;
constexpr int kWriterNice = -10;
constexpr rlim_t kRtTimeSoft = 500000;   // µs of CPU without sleeping: SIGXCPU
constexpr rlim_t kRtTimeHard = 3000000;  // µs: SIGKILL
constexpr auto kPauseEvery = std::chrono::milliseconds(20);

struct WriterSched {
  int policy = SCHED_OTHER;  // SCHED_FIFO or SCHED_OTHER
  int value = 0;             // the real-time priority, or the nice value
  int fifo_errno = 0;        // why SCHED_FIFO was refused (0: it was not)
  int nice_errno = 0;        // why nice -10 was refused
  pid_t tid = 0;
  bool asked = false;  // false: left as it was (the readable dump's writer hands its batches to JavaScript)

  // For the log: "SCHED_FIFO priority 1", "nice -10 (SCHED_FIFO: EPERM)", ...
  std::string Describe() const {
    if (policy == SCHED_FIFO) return "SCHED_FIFO priority " + std::to_string(value);
    if (!asked) return "normal priority (not asked for more: its output goes to JavaScript)";
    std::string s = value ? "nice " + std::to_string(value) : "normal priority";
    s += std::string(" (SCHED_FIFO: ") + strerrorname_np(fifo_errno);
    if (nice_errno) s += std::string(", nice ") + std::to_string(kWriterNice) + ": " + strerrorname_np(nice_errno);
    return s + ")";
  }
};

// Called by the writer thread for itself.
inline WriterSched RaiseWriterPriority() {
  WriterSched w;
  w.tid = (pid_t)syscall(SYS_gettid);
  w.asked = true;
  // the guard first: never real-time without it (lowered only, never raised)
  rlimit lim;
  bool guarded = getrlimit(RLIMIT_RTTIME, &lim) == 0;
  if (guarded) {
    lim.rlim_max = std::min(lim.rlim_max, kRtTimeHard);
    lim.rlim_cur = std::min({lim.rlim_cur, kRtTimeSoft, lim.rlim_max});
    guarded = setrlimit(RLIMIT_RTTIME, &lim) == 0;
  }
  sched_param p = {};
  p.sched_priority = kWriterRtPriority;
  if (!guarded) {
    w.fifo_errno = errno;
  } else if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0) {
    w.policy = SCHED_FIFO;
    w.value = kWriterRtPriority;
    return w;
  } else {
    w.fifo_errno = errno;
  }
  if (setpriority(PRIO_PROCESS, 0, kWriterNice) == 0) w.value = kWriterNice;  // this thread only (Linux)
  else w.nice_errno = errno;
  return w;
}

// Puts a thread of this process back to normal scheduling (any user may
// lower its own threads; the nice value it had is kept).
inline int DemoteWriter(pid_t tid) {
  sched_param p = {};
  return syscall(SYS_sched_setscheduler, tid, SCHED_OTHER, &p) == 0 ? 0 : -errno;
}

// The writer's pacing in a backlog: after kPauseEvery without sleeping, a
// 50 µs sleep, which also resets the kernel's RLIMIT_RTTIME count (measured:
// a SCHED_FIFO loop sleeping 50 µs every 50 ms ran 1 s without SIGXCPU at a
// 200 ms limit; without the sleeps it got SIGXCPU).
class Pacer {
 public:
  void Slept() { since_ = std::chrono::steady_clock::now(); }
  void Pace() {
    auto now = std::chrono::steady_clock::now();
    if (now - since_ < kPauseEvery) return;
    timespec ts = {0, 50000};
    nanosleep(&ts, nullptr);
    since_ = std::chrono::steady_clock::now();
  }

 private:
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
};

}  // namespace unixsock

#endif  // UNIXSOCK_WRITER_SCHED_H
