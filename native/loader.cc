// The loader (loader.h): the strategy table, open, load, attach.
#include "loader.h"

#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>
#include <utility>

extern "C" {
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
}

#include "unixsock.skel.h"
#include "unixsock_vocab.h"

namespace unixsock {

namespace {

// libbpf's messages for the attempt in progress (the loader runs on the JS thread).
std::string g_libbpf_log;
// Full libbpf output (verifier logs included) goes here when debugging.
FILE* g_debug_log = nullptr;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  char* buf = nullptr;
  int n = vasprintf(&buf, fmt, args);
  if (n < 0) return 0;
  if (g_debug_log) fputs(buf, g_debug_log);
  if (level != LIBBPF_DEBUG && g_libbpf_log.size() < 64 * 1024) g_libbpf_log.append(buf);
  free(buf);
  return 0;
}

// The reason for a one-line error: when libbpf quoted a verifier log, the
// verifier's own sentence (the last line before its statistics, e.g. "The
// sequence of 8193 jumps is too complex.") and the program it refused; else
// the last line libbpf printed.
std::string LastLogLine() {
  const std::string& s = g_libbpf_log;
  const std::string begin = "-- BEGIN PROG LOAD LOG --", end = "-- END PROG LOAD LOG --";
  size_t b = s.rfind(begin);
  if (b != std::string::npos) {
    size_t e = s.find(end, b);
    std::string log = s.substr(b + begin.size(), e == std::string::npos ? std::string::npos : e - b - begin.size());
    std::string reason, line;
    size_t pos = 0;
    while (pos < log.size()) {
      size_t nl = log.find('\n', pos);
      line = log.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? log.size() : nl + 1;
      while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
      if (line.empty() || line.rfind("processed ", 0) == 0 || line.rfind("verification time", 0) == 0 ||
          line.rfind("stack depth", 0) == 0 || line.rfind("libbpf: ", 0) == 0)
        continue;
      reason = line;
    }
    // "libbpf: prog 'send_length': -- BEGIN PROG LOAD LOG --": the program's name
    size_t ls = s.rfind('\n', b);
    std::string head = s.substr(ls == std::string::npos ? 0 : ls + 1, b - (ls == std::string::npos ? 0 : ls + 1));
    size_t q1 = head.find("prog '"), q2 = q1 == std::string::npos ? q1 : head.find('\'', q1 + 6);
    std::string prog = q2 == std::string::npos ? "" : head.substr(q1 + 6, q2 - q1 - 6);
    if (!reason.empty()) return (prog.empty() ? "" : "the verifier refused " + prog + ": ") + reason;
  }
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  size_t nl = t.rfind('\n');
  std::string line = nl == std::string::npos ? t : t.substr(nl + 1);
  if (line.rfind("libbpf: ", 0) == 0) line = line.substr(8);
  return line;
}

bool TracefsReady(std::string* why) {
  struct stat st;
  if (stat("/sys/kernel/tracing/events/syscalls", &st) == 0) return true;
  if (stat("/sys/kernel/debug/tracing/events/syscalls", &st) == 0) return true;
  if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0 &&
      stat("/sys/kernel/tracing/events/syscalls", &st) == 0)
    return true;
  *why = std::string("tracefs is not mounted and mounting it failed: ") + strerror(errno);
  return false;
}

// Milliseconds of each phase of the load, for the log's "capturing" line:
// "btf 21, open 3, load 58, attach 1" (a phase seen twice adds up).
class Phases {
 public:
  Phases() : last_(Now()) {}
  void Mark(const char* phase) {
    double now = Now();
    for (auto& p : done_)
      if (p.first == phase) {
        p.second += now - last_;
        last_ = now;
        return;
      }
    done_.emplace_back(phase, now - last_);
    last_ = now;
  }
  std::string Text() const {
    std::string t;
    char buf[64];
    for (const auto& p : done_) {
      snprintf(buf, sizeof buf, "%s%s %.0f", t.empty() ? "" : ", ", p.first.c_str(), p.second);
      t += buf;
    }
    return t;
  }

 private:
  static double Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  }
  std::vector<std::pair<std::string, double>> done_;
  double last_;
};

// A program of the skeleton, named by its member: obj->progs.*p.
using Progs = decltype(unixsock_bpf::progs);
using Prog = bpf_program* Progs::*;

// What each strategy loads and attaches (as in unixsock.bpf.c), in the order
// they are tried: enum unixsock_strategy's.
struct Strategy {
  unixsock_strategy id;
  std::vector<Prog> required;  // each must load and attach, or the strategy fails
  std::vector<Prog> optional;  // their failure is a note
  bool sendmmsg_enter;         // + enter_sendmmsg (optional) when tracefs is there
};

const Strategy kStrategies[] = {
    {UNIXSOCK_S_FENTRY,
     {&Progs::fx_stream_sendmsg, &Progs::fx_dgram_sendmsg},
     {&Progs::fx_stream_recvmsg, &Progs::fx_dgram_recvmsg, &Progs::fx_stream_sendpage},
     true},
    {UNIXSOCK_S_KPROBE,
     {&Progs::kp_stream_sendmsg, &Progs::krp_stream_sendmsg, &Progs::kp_dgram_sendmsg, &Progs::krp_dgram_sendmsg},
     {&Progs::kp_stream_recvmsg, &Progs::kp_dgram_recvmsg, &Progs::kp_stream_sendpage, &Progs::krp_stream_sendpage},
     true},
    {UNIXSOCK_S_SOCK_SEND_LENGTH, {&Progs::send_length}, {&Progs::recv_length}, true},
    {UNIXSOCK_S_SYSCALLS,
     {&Progs::sx_write, &Progs::sx_writev, &Progs::sx_sendto, &Progs::sx_sendmsg, &Progs::sx_sendmmsg},
     {&Progs::sx_sendfile, &Progs::sx_splice, &Progs::recv_length},
     false},
};

// One choice of strategy: the kernel's BTF and tracefs are looked at once.
class Loader {
 public:
  Loader(const unixsock_filter& filter, uint32_t ring_bytes, Phases* phases, Ring* ring)
      : filter_(filter), ring_bytes_(ring_bytes), phases_(phases), ring_(ring) {
    // The ring first, on a thread of its own (it inherits this thread's
    // raised capabilities and ends before the loader returns): the kernel
    // zeroes its pages as it creates it, 12-15 ms for the default 64 MiB
    // here, which now runs on the other CPU while this one reads the
    // kernel's BTF and opens the object. Each load reuses it. The thread also
    // maps it for the reader (7-10 ms: the kernel fills the page tables of
    // its 2 x 64 MiB as it maps it).
    ring_thread_ = std::thread([this] {
      ring_fd_ = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "rb", 0, 0, ring_bytes_, nullptr);
      if (ring_fd_ >= 0 && ring_->Open(ring_fd_, ring_bytes_) != 0) ring_->Close();
    });
    tracefs_ = TracefsReady(&tracefs_why_);
    phases_->Mark("tracefs");
  }
  ~Loader() {
    if (ring_thread_.joinable()) ring_thread_.join();
    if (ring_fd_ >= 0) {  // not handed to the probes: the mapping goes too
      ring_->Close();
      close(ring_fd_);
    }
    if (spare_) unixsock_bpf__destroy(spare_);
    btf__free(vmlinux_btf_);
  }

  Probes* Try(const Strategy& st, std::string* why) {
    if (st.id == UNIXSOCK_S_SYSCALLS && !tracefs_) {
      *why = tracefs_why_;
      return nullptr;
    }
    if (st.id == UNIXSOCK_S_KPROBE && access("/sys/bus/event_source/devices/kprobe", F_OK) != 0) {
      *why = "this kernel has no kprobes (no kprobe event source in /sys/bus/event_source/devices)";
      return nullptr;
    }
    g_libbpf_log.clear();
    // the skeleton an attempt refused before loading is still fresh: the next one takes it
    unixsock_bpf* s = spare_ ? std::exchange(spare_, nullptr) : Open();
    if (!s) {
      *why = "cannot open the BPF object: " + LastLogLine();
      return nullptr;
    }
    for (Prog p : st.required) {
      std::string m = Missing(s->progs.*p);
      if (!m.empty()) {
        spare_ = s;
        *why = m;
        return nullptr;
      }
    }
    bool refused = st.id == UNIXSOCK_S_FENTRY && TrampolinesRefused(s->progs.*st.required[0]);
    phases_->Mark("probe");
    if (refused) {
      spare_ = s;
      *why = "the kernel refuses BPF trampolines (loading fexit programs: Operation not permitted)";
      return nullptr;
    }
    std::vector<Prog> opt;
    for (Prog p : st.optional)
      if (Missing(s->progs.*p).empty()) opt.push_back(p);
    if (st.sendmmsg_enter && tracefs_) opt.push_back(&Progs::enter_sendmmsg);
    std::vector<Prog> all = st.required;
    all.insert(all.end(), opt.begin(), opt.end());
    int err = 0;
    std::string notes;
    if (!Load(&s, all, &err) && err && !opt.empty()) {
      // An optional program may be what this kernel refuses: retry without.
      notes = "optional programs not loaded";
      opt.clear();
      Load(&s, st.required, &err);
    }
    if (!s) {
      std::string l = LastLogLine();
      if (!err) *why = "cannot open the BPF object: " + l;
      else if (st.id == UNIXSOCK_S_FENTRY && err == -EPERM)
        *why = "the kernel refuses BPF trampolines (loading fexit programs: Operation not permitted)";
      else *why = "load failed (" + std::string(strerror(-err)) + ")" + (l.empty() ? "" : ": " + l);
      return nullptr;
    }
    phases_->Mark("load");
    std::vector<bpf_link*> links;
    for (Prog p : st.required) {
      bpf_link* l = bpf_program__attach(s->progs.*p);
      if (!l) {
        int e = errno;
        *why = std::string("attach ") + bpf_program__section_name(s->progs.*p) + " failed (" + strerror(e) + ")";
        for (auto* k : links) bpf_link__destroy(k);
        unixsock_bpf__destroy(s);
        return nullptr;
      }
      links.push_back(l);
    }
    for (Prog p : opt) {
      bpf_link* l = bpf_program__attach(s->progs.*p);
      if (!l) {
        notes += std::string(notes.empty() ? "" : "; ") + bpf_program__section_name(s->progs.*p) + " not attached (" +
                 strerror(errno) + ")";
        continue;
      }
      links.push_back(l);
    }
    phases_->Mark("attach");
    if (st.id == UNIXSOCK_S_SOCK_SEND_LENGTH && !tracefs_)
      notes += std::string(notes.empty() ? "" : "; ") + "sendmmsg payloads unreadable: " + tracefs_why_;
    *why = notes;
    // the ring the reader mapped is this object's only if the load reused it
    int ring = -1;
    if (ring_reused_) std::swap(ring, ring_fd_);
    else ring_->Close();
    return new Probes(s, std::move(links), ring);
  }

 private:
  // A fresh skeleton with the settings and filters in its read-only data.
  unixsock_bpf* Open() {
    unixsock_bpf* s = unixsock_bpf__open();
    if (!s) return nullptr;
    memcpy((void*)&s->rodata->filter, &filter_, sizeof(filter_));
    bpf_map__set_max_entries(s->maps.rb, ring_bytes_);
    phases_->Mark("open");
    return s;
  }

  // Loads *s (opened, or nullptr: a fresh one is opened) with only progs. A
  // transient EAGAIN (the verifier gives up while signals are pending) is
  // retried a few times on a fresh skeleton. On failure *s is nullptr and
  // *err says why (0: the object did not even open).
  bool Load(unixsock_bpf** sp, const std::vector<Prog>& progs, int* err) {
    for (int i = 0; i < 5; i++) {
      if (!*sp) {
        g_libbpf_log.clear();
        *sp = Open();
      }
      unixsock_bpf* s = *sp;
      *err = 0;
      if (!s) return false;
      bpf_program* p;
      bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, false);
      for (Prog q : progs) bpf_program__set_autoload(s->progs.*q, true);
      // the ring made beside (the constructor); if that failed, libbpf makes
      // it here and reports why
      int ring = RingFd();
      ring_reused_ = ring >= 0 && bpf_map__reuse_fd(s->maps.rb, ring) == 0;
      *err = unixsock_bpf__load(s);
      if (*err == 0) return true;
      unixsock_bpf__destroy(s);
      *sp = nullptr;
      if (*err != -EAGAIN) return false;
      usleep(200000);
    }
    return false;
  }

  int RingFd() {
    if (ring_thread_.joinable()) {
      ring_thread_.join();
      phases_->Mark("ring wait");
    }
    return ring_fd_;
  }

  // The kernel's BTF (5.5 MB here). Kernels since 6.16 let it be mapped:
  // parsing the mapping took 1.5-2 ms, against 6-11 ms for libbpf's reading
  // of the sysfs file, 4 KiB a read() (libbpf 1.1). Older kernels refuse
  // the mmap, and libbpf reads it as before.
  bool VmlinuxBtf() {
    if (vmlinux_btf_) return true;
    int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
      void* p = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      if (p != MAP_FAILED) {
        btf* b = btf__new(p, st.st_size);  // a copy: the mapping can go
        munmap(p, st.st_size);
        if (!libbpf_get_error(b)) vmlinux_btf_ = b;
      }
    }
    if (fd >= 0) close(fd);
    if (!vmlinux_btf_) {
      vmlinux_btf_ = btf__load_vmlinux_btf();
      if (libbpf_get_error(vmlinux_btf_)) vmlinux_btf_ = nullptr;
    }
    phases_->Mark("btf");
    return vmlinux_btf_ != nullptr;
  }

  // What a program attaches to, when the running kernel's BTF says it does not
  // exist ("" when it exists or cannot be told). Optional programs written for
  // other kernel versions are left out before loading, instead of failing it.
  std::string Missing(bpf_program* p) {
    if (!VmlinuxBtf()) return "";
    std::string section = bpf_program__section_name(p);
    size_t slash = section.find('/');
    if (slash == std::string::npos) return "";
    std::string kind = section.substr(0, slash), target = section.substr(slash + 1);
    if (kind == "tp_btf") {
      if (btf__find_by_name_kind(vmlinux_btf_, ("btf_trace_" + target).c_str(), BTF_KIND_TYPEDEF) < 0)
        return "this kernel has no tracepoint " + target +
               (target == "sock_send_length" ? " (added in Linux 6.3)" : "");
    } else if (kind == "fexit" || kind == "fentry" || kind == "kprobe" || kind == "kretprobe") {
      if (btf__find_by_name_kind(vmlinux_btf_, target.c_str(), BTF_KIND_FUNC) < 0)
        return "this kernel has no function " + target;
    }
    return "";
  }

  // True when the kernel refuses to load any fexit program with EPERM, as a
  // kernel without BPF trampolines does (this 6.18 host): a two-instruction
  // fexit program on prog's target answers that in one bpf() call. The full
  // load it spares re-parses vmlinux BTF and creates every map, the 64 MiB
  // ring included, twice (with and without the optional programs): 60-70 ms
  // of the attach measured here. Any other answer (it loads, or another
  // error) leaves the decision to the full load, as before.
  bool TrampolinesRefused(bpf_program* p) {
    if (!VmlinuxBtf()) return false;
    std::string section = bpf_program__section_name(p);
    if (section.rfind("fexit/", 0) != 0) return false;
    int id = btf__find_by_name_kind(vmlinux_btf_, section.c_str() + 6, BTF_KIND_FUNC);
    if (id < 0) return false;
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                   // exit
    };
    LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_TRACE_FEXIT, .attach_btf_id = (__u32)id);
    int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "unixsock_probe", "GPL", insns, 2, &o);
    if (fd >= 0) close(fd);
    return fd == -EPERM;
  }

  const unixsock_filter& filter_;
  uint32_t ring_bytes_;
  Phases* phases_;
  bool tracefs_ = false;
  std::string tracefs_why_;
  btf* vmlinux_btf_ = nullptr;
  unixsock_bpf* spare_ = nullptr;  // opened, refused before loading: the next attempt's
  Ring* ring_;
  std::thread ring_thread_;
  int ring_fd_ = -1;
  bool ring_reused_ = false;
};

}  // namespace

Probes::~Probes() {
  for (auto* l : links_) bpf_link__destroy(l);
  unixsock_bpf__destroy(skel_);
  if (own_ring_fd_ >= 0) close(own_ring_fd_);
}

int Probes::ring_fd() const { return bpf_map__fd(skel_->maps.rb); }
size_t Probes::ring_size() const { return bpf_map__max_entries(skel_->maps.rb); }
const volatile unixsock_stat_line* Probes::stat_lines() const { return skel_->bss->stat_lines; }

Probes* LoadProbes(const unixsock_filter& filter, uint32_t ring_bytes, const std::string& forced,
                   std::vector<Attempt>* attempts, std::string* timings, Ring* ring) {
  libbpf_set_print(LibbpfPrint);
  Phases phases;
  Loader loader(filter, ring_bytes, &phases, ring);
  for (const Strategy& st : kStrategies) {
    const char* name = unixsock_strategy_name(st.id);
    if (!forced.empty() && forced != "auto" && forced != name) continue;
    std::string text;
    Probes* p = loader.Try(st, &text);
    attempts->push_back({name, p != nullptr, text});
    *timings = phases.Text();
    if (p) return p;
  }
  return nullptr;
}

void SetLibbpfDebugLog(FILE* f) { g_debug_log = f; }
bool HasLibbpfDebugLog() { return g_debug_log != nullptr; }

}  // namespace unixsock
