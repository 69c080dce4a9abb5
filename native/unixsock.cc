// Native side of unixsock: loads the BPF skeleton with the attach strategy
// that works on this kernel, and drains the ring buffer on a worker thread,
// handing JavaScript batches of raw records (never one call per message).
//
// Batch format (little-endian, host order): repeated
//   u32 length, then `length` bytes of one record (struct unixsock_msg or
//   struct unixsock_data + its len bytes), padded to 8 bytes.
#include <napi.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
}

#include "unixsock.h"
#include "unixsock_vocab.h"
#include "unixsock.skel.h"
#include "pcapng_out.h"
#include "ring.h"
#include "privilege.h"

static_assert(sizeof(struct unixsock_msg) == UNIXSOCK_MSG_SIZE, "unixsock_msg size");
static_assert(sizeof(struct unixsock_data) == UNIXSOCK_DATA_HDR_SIZE, "unixsock_data size");

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

struct Filters {
  uint32_t self_tgid = 0, snaplen = 0, types_mask = 0;
  uint64_t wakeup_bytes = 256 * 1024;
  bool payload = true;
  uint8_t path_on = 0, path_neg = 0;
  std::string path;
  uint8_t file_on = 0, file_neg = 0;
  uint32_t file_dev = 0;
  uint64_t file_ino = 0;
  uint8_t pid_on = 0, pid_neg = 0;
  uint32_t pid = 0;
  uint8_t comm_on = 0, comm_neg = 0;
  std::string comm;
  uint32_t ring_bytes = 64u << 20;
  uint8_t own_uid_on = 0;
  uint32_t own_uid = 0;
};

const char* kStrategies[] = {"fentry", "kprobe", "sock_send_length", "syscalls"};

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

}  // namespace

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(
        env, "Capture",
        {InstanceMethod("start", &Capture::Start), InstanceMethod("stop", &Capture::Stop),
         InstanceMethod("stats", &Capture::Stats), InstanceMethod("close", &Capture::Close),
         InstanceAccessor("strategy", &Capture::Strategy, nullptr),
         InstanceAccessor("attempts", &Capture::Attempts, nullptr)});
    exports.Set("Capture", fn);
    exports.Set("clockOffsetNs", Napi::Function::New(env, ClockOffset));
    exports.Set("layout", Napi::Function::New(env, Layout));
    exports.Set("readerGone", Napi::Function::New(env, ReaderGone));
    exports.Set("writeRecords", Napi::Function::New(env, WriteRecords));
    return exports;
  }

  explicit Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "Usage: new Capture({ strategy, ringBytes, filters... })")
          .ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    auto u32 = [&](const char* k, uint32_t d) {
      Napi::Value v = o.Get(k);
      return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : d;
    };
    auto f64 = [&](const char* k, double d) {
      Napi::Value v = o.Get(k);
      return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d;
    };
    auto str = [&](const char* k) {
      Napi::Value v = o.Get(k);
      if (v.IsBuffer()) {
        auto b = v.As<Napi::Buffer<char>>();
        return std::string(b.Data(), b.Length());
      }
      return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
    };
    f_.self_tgid = u32("selfTgid", getpid());
    f_.snaplen = u32("snaplen", 0);
    f_.types_mask = u32("typesMask", 0);
    f_.payload = !o.Get("payload").IsBoolean() || o.Get("payload").As<Napi::Boolean>();
    f_.path_on = u32("pathMode", 0);
    f_.path_neg = u32("pathNeg", 0);
    f_.path = str("path");
    f_.file_on = u32("fileOn", 0);
    f_.file_neg = u32("fileNeg", 0);
    f_.file_dev = u32("fileDev", 0);
    f_.file_ino = (uint64_t)f64("fileIno", 0);
    f_.pid_on = u32("pidOn", 0);
    f_.pid_neg = u32("pidNeg", 0);
    f_.pid = u32("pid", 0);
    f_.comm_on = u32("commOn", 0);
    f_.comm_neg = u32("commNeg", 0);
    f_.comm = str("comm");
    f_.ring_bytes = u32("ringBytes", 64u << 20);
    // the administrator's policy (src/privilege.ts reads it from a root-owned file)
    f_.own_uid_on = o.Get("ownUid").IsNumber() ? 1 : 0;
    f_.own_uid = u32("ownUid", 0);
    // the worker looks every 5 ms anyway: the kernel wakes it early only when the ring fills up
    f_.wakeup_bytes = (uint64_t)f64("wakeupBytes", 0);
    if (!f_.wakeup_bytes) f_.wakeup_bytes = std::max<uint64_t>(256 * 1024, f_.ring_bytes / 8);
    std::string forced = str("strategy");
    if (f_.path.size() > UNIXSOCK_PATH_MAX || f_.comm.size() >= UNIXSOCK_COMM_LEN) {
      Napi::TypeError::New(env, "path or comm filter too long").ThrowAsJavaScriptException();
      return;
    }

    // the log file JavaScript opened (never a path opened here: see privilege.h)
    int debug_fd = o.Get("libbpfLogFd").IsNumber() ? o.Get("libbpfLogFd").As<Napi::Number>().Int32Value() : -1;
    if (debug_fd >= 0 && !g_debug_log) {
      int fd = fcntl(debug_fd, F_DUPFD_CLOEXEC, 3);
      if (fd >= 0) g_debug_log = fdopen(fd, "a");
    }
    libbpf_set_print(LibbpfPrint);
    Napi::Array attempts = Napi::Array::New(env);
    // CAP_BPF, CAP_PERFMON in effect from here to the ring's mapping (see privilege.h)
    auto raised = std::make_unique<unixsock::priv::Raised>();
    std::string tracefs_why;
    bool tracefs = TracefsReady(&tracefs_why);
    for (const char* name : kStrategies) {
      if (!forced.empty() && forced != "auto" && forced != name) continue;
      std::string why;
      if (TryStrategy(name, tracefs, tracefs_why, &why)) {
        strategy_ = name;
        Napi::Object a = Napi::Object::New(env);
        a.Set("strategy", name);
        a.Set("ok", true);
        a.Set("note", why);
        attempts.Set(attempts.Length(), a);
        break;
      }
      Napi::Object a = Napi::Object::New(env);
      a.Set("strategy", name);
      a.Set("ok", false);
      a.Set("error", why);
      attempts.Set(attempts.Length(), a);
    }
    btf__free(vmlinux_btf_);
    vmlinux_btf_ = nullptr;
    if (names_) unixsock_bpf__destroy(names_);
    names_ = nullptr;
    if (skel_) {
      ring_size_ = bpf_map__max_entries(skel_->maps.rb);
      ring_error_ = ring_.Open(bpf_map__fd(skel_->maps.rb), ring_size_);
    }
    raised.reset();
    // nothing after this point needs a capability: links are closed, the ring
    // and the counters (.bss) are read through mappings made above
    std::string held = unixsock::priv::DropAll();
    if (!held.empty()) {
      Teardown();
      Napi::Error e = Napi::Error::New(env, held + ": the capture stops here");
      e.Set("code", "EPRIVILEGE");
      e.ThrowAsJavaScriptException();
      return;
    }
    attempts_ = Napi::Persistent(attempts);
    if (!skel_) {
      std::string msg = "no attach strategy works on this kernel:";
      for (uint32_t i = 0; i < attempts.Length(); i++) {
        Napi::Object a = attempts.Get(i).As<Napi::Object>();
        msg += " " + a.Get("strategy").As<Napi::String>().Utf8Value() + ": " +
               a.Get("error").As<Napi::String>().Utf8Value() + ";";
      }
      if (!msg.empty() && msg.back() == ';') msg.pop_back();
      Napi::Error e = Napi::Error::New(env, msg);
      e.Set("code", "ENOSTRATEGY");
      e.Set("attempts", attempts);
      e.ThrowAsJavaScriptException();
    }
  }

  ~Capture() override { Teardown(); }

 private:
  // A fresh skeleton with the filters written into its read-only data.
  unixsock_bpf* Open() {
    unixsock_bpf* s = unixsock_bpf__open();
    if (!s) return nullptr;
    auto* ro = s->rodata;
    ro->self_tgid = f_.self_tgid;
    ro->snaplen = f_.snaplen;
    ro->wakeup_bytes = f_.wakeup_bytes;
    ro->capture_payload = f_.payload ? 1 : 0;
    ro->types_mask = f_.types_mask;
    ro->filt_path_on = f_.path_on;
    ro->filt_path_neg = f_.path_neg;
    ro->filt_path_len = (uint8_t)f_.path.size();
    memcpy((void*)ro->filt_path, f_.path.data(), f_.path.size());
    ro->filt_file_on = f_.file_on;
    ro->filt_file_neg = f_.file_neg;
    ro->filt_file_dev = f_.file_dev;
    ro->filt_file_ino = f_.file_ino;
    ro->filt_pid_on = f_.pid_on;
    ro->filt_pid_neg = f_.pid_neg;
    ro->filt_pid = f_.pid;
    ro->filt_comm_on = f_.comm_on;
    ro->filt_comm_neg = f_.comm_neg;
    memcpy((void*)ro->filt_comm, f_.comm.data(), f_.comm.size());
    ro->own_uid_on = f_.own_uid_on;
    ro->own_uid = f_.own_uid;
    bpf_map__set_max_entries(s->maps.rb, f_.ring_bytes);
    return s;
  }

  // Program names (as in unixsock.bpf.c) each strategy needs, and those it
  // can do without (their failure is reported as a note).
  static void Programs(const std::string& name, bool tracefs, std::vector<std::string>* req,
                       std::vector<std::string>* opt) {
    if (name == "fentry") {
      *req = {"fx_stream_sendmsg", "fx_dgram_sendmsg"};
      *opt = {"fx_stream_recvmsg", "fx_dgram_recvmsg", "fx_stream_sendpage"};
      if (tracefs) opt->push_back("enter_sendmmsg");
    } else if (name == "kprobe") {
      *req = {"kp_stream_sendmsg", "krp_stream_sendmsg", "kp_dgram_sendmsg", "krp_dgram_sendmsg"};
      *opt = {"kp_stream_recvmsg", "kp_dgram_recvmsg", "kp_stream_sendpage", "krp_stream_sendpage"};
      if (tracefs) opt->push_back("enter_sendmmsg");
    } else if (name == "sock_send_length") {
      *req = {"send_length"};
      *opt = {"recv_length"};
      if (tracefs) opt->push_back("enter_sendmmsg");
    } else {
      *req = {"sx_write", "sx_writev", "sx_sendto", "sx_sendmsg", "sx_sendmmsg"};
      *opt = {"sx_sendfile", "sx_splice", "recv_length"};
    }
  }

  bool LoadWith(unixsock_bpf* s, const std::vector<std::string>& names, int* err) {
    bpf_program* p;
    bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, false);
    for (auto& n : names) {
      p = bpf_object__find_program_by_name(s->obj, n.c_str());
      if (p) bpf_program__set_autoload(p, true);
    }
    *err = unixsock_bpf__load(s);
    return *err == 0;
  }

  // A fresh skeleton loaded with the named programs, or nullptr with *err set
  // (0: the object did not even open). A transient EAGAIN (the verifier gives
  // up while signals are pending) is retried a few times.
  unixsock_bpf* OpenAndLoad(const std::vector<std::string>& names, int* err) {
    for (int i = 0; i < 5; i++) {
      g_libbpf_log.clear();
      unixsock_bpf* s = Open();
      *err = 0;
      if (!s) return nullptr;
      if (LoadWith(s, names, err)) return s;
      unixsock_bpf__destroy(s);
      if (*err != -EAGAIN) return nullptr;
      usleep(200000);
    }
    return nullptr;
  }

  // What a program attaches to, when the running kernel's BTF says it does not
  // exist ("" when it exists or cannot be told). Optional programs written for
  // other kernel versions are left out before loading, instead of failing it.
  std::string Missing(const std::string& prog) {
    if (!vmlinux_btf_) {
      vmlinux_btf_ = btf__load_vmlinux_btf();
      if (!vmlinux_btf_) return "";
    }
    if (!names_) names_ = unixsock_bpf__open();  // only to read section names
    if (!names_) return "";
    bpf_program* p = bpf_object__find_program_by_name(names_->obj, prog.c_str());
    std::string section = p ? bpf_program__section_name(p) : "";
    size_t slash = section.find('/');
    if (slash == std::string::npos) return "";
    std::string kind = section.substr(0, slash), target = section.substr(slash + 1);
    if (kind == "tp_btf") {
      if (btf__find_by_name_kind(vmlinux_btf_, ("btf_trace_" + target).c_str(), BTF_KIND_TYPEDEF) < 0)
        return "this kernel has no tracepoint " + target + (target == "sock_send_length" ? " (added in Linux 6.3)" : "");
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
  bool TrampolinesRefused(const std::string& prog) {
    if (!vmlinux_btf_ || !names_) return false;
    bpf_program* p = bpf_object__find_program_by_name(names_->obj, prog.c_str());
    std::string section = p ? bpf_program__section_name(p) : "";
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

  bool TryStrategy(const std::string& name, bool tracefs, const std::string& tracefs_why,
                   std::string* why) {
    std::vector<std::string> req, opt;
    Programs(name, tracefs, &req, &opt);
    if (name == "syscalls" && !tracefs) {
      *why = tracefs_why;
      return false;
    }
    if (name == "kprobe" && access("/sys/bus/event_source/devices/kprobe", F_OK) != 0) {
      *why = "this kernel has no kprobes (no kprobe event source in /sys/bus/event_source/devices)";
      return false;
    }
    for (auto& n : req) {
      std::string m = Missing(n);
      if (!m.empty()) {
        *why = m;
        return false;
      }
    }
    if (name == "fentry" && TrampolinesRefused(req[0])) {
      *why = "the kernel refuses BPF trampolines (loading fexit programs: Operation not permitted)";
      return false;
    }
    std::vector<std::string> present;
    for (auto& n : opt)
      if (Missing(n).empty()) present.push_back(n);
    opt.swap(present);
    std::vector<std::string> all = req;
    all.insert(all.end(), opt.begin(), opt.end());
    int err = 0;
    std::string notes;
    unixsock_bpf* s = OpenAndLoad(all, &err);
    if (!s && err && !opt.empty()) {
      // An optional program may be what this kernel refuses: retry without.
      notes = "optional programs not loaded";
      opt.clear();
      s = OpenAndLoad(req, &err);
    }
    if (!s) {
      std::string l = LastLogLine();
      if (!err)
        *why = "cannot open the BPF object: " + l;
      else if (name == "fentry" && err == -EPERM)
        *why = "the kernel refuses BPF trampolines (loading fexit programs: Operation not permitted)";
      else
        *why = "load failed (" + std::string(strerror(-err)) + ")" + (l.empty() ? "" : ": " + l);
      return false;
    }
    std::vector<bpf_link*> links;
    for (auto& n : req) {
      bpf_program* p = bpf_object__find_program_by_name(s->obj, n.c_str());
      bpf_link* l = p ? bpf_program__attach(p) : nullptr;
      if (!l) {
        int e = errno;
        *why = std::string("attach ") + (p ? bpf_program__section_name(p) : n.c_str()) + " failed (" +
               strerror(e) + ")";
        for (auto* k : links) bpf_link__destroy(k);
        unixsock_bpf__destroy(s);
        return false;
      }
      links.push_back(l);
    }
    for (auto& n : opt) {
      bpf_program* p = bpf_object__find_program_by_name(s->obj, n.c_str());
      bpf_link* l = p ? bpf_program__attach(p) : nullptr;
      if (!l) {
        notes += std::string(notes.empty() ? "" : "; ") + (p ? bpf_program__section_name(p) : n.c_str()) +
                 " not attached (" + strerror(errno) + ")";
        continue;
      }
      links.push_back(l);
    }
    if (name == "sock_send_length" && !tracefs)
      notes += std::string(notes.empty() ? "" : "; ") + "sendmmsg payloads unreadable: " + tracefs_why;
    *why = notes;
    links_ = links;
    skel_ = s;
    return true;
  }

  Napi::Value Strategy(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), strategy_);
  }
  Napi::Value Attempts(const Napi::CallbackInfo& info) { return attempts_.Value(); }

  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Capture*>(ctx);
    const uint8_t* p = static_cast<const uint8_t*>(data);
    if (self->out_) {
      self->out_->Record(p, size);
      return 0;
    }
    size_t len = size;
    if (size >= sizeof(unixsock_data) && (p[0] == UNIXSOCK_REC_DATA || p[0] == UNIXSOCK_REC_CTRL)) {
      const auto* d = static_cast<const unixsock_data*>(data);
      size_t want = sizeof(unixsock_data) + d->len;
      if (want < len) len = want;  // the rest of the size class holds nothing
    }
    auto& b = self->batch_;
    uint32_t l32 = (uint32_t)len;
    size_t at = b.size();
    size_t padded = (len + 7) & ~size_t(7);
    b.resize(at + 4 + 4 + padded);
    memcpy(b.data() + at, &l32, 4);
    memset(b.data() + at + 4, 0, 4);
    memcpy(b.data() + at + 8, p, len);
    if (padded > len) memset(b.data() + at + 8 + len, 0, padded - len);
    if (b.size() >= kFlushBytes) self->Flush();
    return 0;
  }

  static constexpr size_t kFlushBytes = 4u << 20;

  void Flush() {
    if (batch_.empty()) return;
    auto* v = new std::vector<uint8_t>(std::move(batch_));
    batch_ = std::vector<uint8_t>();
    batch_.reserve(kFlushBytes + (1 << 17));  // room for a whole batch: no reallocation
    napi_status st = tsfn_.BlockingCall(v, [](Napi::Env env, Napi::Function cb, std::vector<uint8_t>* data) {
      auto buf = Napi::Buffer<uint8_t>::New(env, data->data(), data->size(),
                                            [](Napi::Env, uint8_t*, std::vector<uint8_t>* d) { delete d; },
                                            data);
      cb.Call({buf});
    });
    if (st != napi_ok) delete v;
    last_flush_ = std::chrono::steady_clock::now();
  }

  // The worker: reads the ring in place, and either hands JavaScript batches
  // (copies) or, with an output fd, writes pcapng blocks that point into the
  // ring and gives the ring its space back once they are written.
  void Run(int flush_ms) {
    last_flush_ = std::chrono::steady_clock::now();
    auto read = [this](size_t max) {
      return ring_.Read([this](const uint8_t* p, size_t n) { OnRecord(this, (void*)p, n); }, max);
    };
    while (running_.load()) {
      // also records submitted without a wakeup; a backlog in steps, each
      // written and given back to the kernel before the next is read
      size_t got = read(out_ ? kWriteBytes : SIZE_MAX);
      auto now = std::chrono::steady_clock::now();
      bool due = now - last_flush_ >= std::chrono::milliseconds(flush_ms);
      if (out_) {
        // write when due, when 2 MiB of output waits, or before what we hold of the ring passes 1/16 of it
        if (due || out_->pending_bytes() >= kWriteBytes || ring_.Held() >= ring_size_ / 16) {
          out_->Write();  // afterwards nothing refers to the ring (sends still waiting hold copies)
          ring_.Release();
          last_flush_ = now;
        } else if (!out_->holds_records()) {
          ring_.Release();
        }
        Publish();
        if (out_->write_error()) break;
      } else {
        ring_.Release();  // batches hold copies
        if (due) Flush();
      }
      if (got >= kWriteBytes / 2) continue;  // a backlog: on without waiting
      int e = ring_.Wait(5);
      if (e < 0) {
        poll_error_ = e;
        break;
      }
    }
    while (read(out_ ? kWriteBytes : SIZE_MAX) > 0) {
      if (out_ && out_->pending_bytes() >= kWriteBytes) {
        out_->Write();
        ring_.Release();
      }
    }
    if (out_) {
      out_->FlushPending();
      out_->Write();
      out_->EndWriteBehind();  // JavaScript closes the file after onEnd
      Publish();
    } else {
      Flush();
    }
    ring_.Release();
  }

  static constexpr size_t kWriteBytes = 2u << 20;

  // The writer's counters, where the JavaScript thread can read them.
  void Publish() {
    const auto& c = out_->counters();
    std::lock_guard<std::mutex> lock(pub_mu_);
    pub_ = c;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!skel_ || started_) {
      Napi::Error::New(env, "capture already started or closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "Usage: start(onBatch, onEnd[, flushMs[, {fd, clockOffset, limit}]])")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int flush_ms = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 50;
    if (flush_ms < 1 || flush_ms > 10000) flush_ms = 50;
    if (info.Length() > 3 && info[3].IsObject()) {
      // pcapng blocks written by the worker to this fd (JavaScript never sees the records)
      Napi::Object o = info[3].As<Napi::Object>();
      if (!o.Get("fd").IsNumber() || !o.Get("clockOffset").IsBigInt()) {
        Napi::TypeError::New(env, "output needs fd and clockOffset (bigint)").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      bool lossless;
      int64_t offset = o.Get("clockOffset").As<Napi::BigInt>().Int64Value(&lossless);
      double limit = o.Get("limit").IsNumber() ? o.Get("limit").As<Napi::Number>().DoubleValue() : 0;
      out_.reset(new unixsock::PcapngOut(o.Get("fd").As<Napi::Number>().Int32Value(), offset,
                                         limit > 0 ? (uint64_t)limit : 0));
    }
    int re = ring_error_;
    if (re < 0) {
      Napi::Error::New(env, std::string("cannot map the ring buffer: ") + strerror(-re)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Function on_end = info[1].As<Napi::Function>();
    end_cb_ = Napi::Persistent(on_end);
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "unixsock-ring", 16, 1, this,
                                          [](Napi::Env env, Capture* self) {
                                            if (self->thread_.joinable()) self->thread_.join();
                                            Napi::Object r = Napi::Object::New(env);
                                            r.Set("pollError", self->poll_error_);
                                            r.Set("writeError", self->out_ ? self->out_->write_error() : 0);
                                            self->end_cb_.Call({r});
                                            self->end_cb_.Reset();
                                            self->Unref();
                                          });
    Ref();  // kept alive until the worker has delivered its last batch
    started_ = true;
    running_ = true;
    batch_.reserve(kFlushBytes + (1 << 17));  // room for a whole batch: no reallocation
    // The worker takes no signals: SIGTERM and friends stay with Node's main
    // thread, where the capture's handlers run.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_ = std::thread([this, flush_ms] {
      Run(flush_ms);
      tsfn_.Release();
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return env.Undefined();
  }

  // Asks the worker to drain and stop; onEnd is called after the last batch.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    running_ = false;
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    if (!skel_) return r;
    // the per-CPU lines in the object's .bss, mapped at load (no bpf() call: see unixsock.bpf.c)
    int ncpu = std::min(libbpf_num_possible_cpus(), UNIXSOCK_STAT_CPUS);
    const char* names[] = {"sends", "bytes", "capturedBytes", "lostMessages", "lostFragments", "lostBytes",
                           "readErrors"};
    for (uint32_t k = 0; k < UNIXSOCK_STAT_MAX; k++) {
      uint64_t sum = 0;
      for (int c = 0; c < ncpu; c++) sum += ((volatile uint64_t*)skel_->bss->stat_lines[c].v)[k];
      r.Set(names[k], Napi::Number::New(env, (double)sum));
    }
    if (out_) {
      unixsock::Counters c;
      {
        std::lock_guard<std::mutex> lock(pub_mu_);
        c = pub_;
      }
      SetCounters(r, c);
    }
    return r;
  }

  void Teardown() {
    running_ = false;
    if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
    ring_.Close();
    for (auto* l : links_) bpf_link__destroy(l);
    links_.clear();
    if (skel_) {
      unixsock_bpf__destroy(skel_);
      skel_ = nullptr;
    }
  }

  // Detaches every program and frees every map. Call after onEnd.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  static Napi::Value ClockOffset(const Napi::CallbackInfo& info) {
    // realtime - monotonic, sampled where the two reads are closest together
    int64_t best_gap = INT64_MAX, offset = 0;
    for (int i = 0; i < 16; i++) {
      timespec a, r, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      clock_gettime(CLOCK_REALTIME, &r);
      clock_gettime(CLOCK_MONOTONIC, &b);
      int64_t an = a.tv_sec * 1000000000LL + a.tv_nsec, bn = b.tv_sec * 1000000000LL + b.tv_nsec;
      int64_t rn = r.tv_sec * 1000000000LL + r.tv_nsec;
      if (bn - an < best_gap) {
        best_gap = bn - an;
        offset = rn - (an + (bn - an) / 2);
      }
    }
    return Napi::BigInt::New(info.Env(), offset);
  }

  // True when fd is a pipe or fifo whose reader has closed it (what a write
  // would report as EPIPE), without writing anything.
  static Napi::Value ReaderGone(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(info.Env(), "Usage: readerGone(fd)").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    struct pollfd p = {info[0].As<Napi::Number>().Int32Value(), POLLOUT, 0};
    bool gone = poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
    return Napi::Boolean::New(info.Env(), gone);
  }

  // The writer's counters under the names src/native.ts (WriterStats) gives them.
  static void SetCounters(Napi::Object r, const unixsock::Counters& c) {
    r.Set("messages", (double)c.messages);
    r.Set("packets", (double)c.packets);
    r.Set("incomplete", (double)c.incomplete);
    r.Set("orphanRecords", (double)c.orphans);
    r.Set("badRecords", (double)c.bad);
  }

  // writeRecords(fd, batch, clockOffset): the capture's pcapng writer run on
  // records given in the batch format (tests and benchmarks: the same code
  // that writes a live capture). Returns the writer's counters.
  static Napi::Value WriteRecords(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsBigInt()) {
      Napi::TypeError::New(env, "Usage: writeRecords(fd, batch, clockOffset)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    bool lossless;
    unixsock::PcapngOut out(info[0].As<Napi::Number>().Int32Value(), info[2].As<Napi::BigInt>().Int64Value(&lossless), 0);
    auto b = info[1].As<Napi::Buffer<uint8_t>>();
    size_t o = 0;
    while (o + 8 <= b.Length()) {
      uint32_t len;
      memcpy(&len, b.Data() + o, 4);
      if (len > b.Length() - o - 8) break;
      out.Record(b.Data() + o + 8, len);
      o += 8 + ((len + 7) & ~7u);
    }
    out.FlushPending();
    out.Write();
    const auto& c = out.counters();
    Napi::Object r = Napi::Object::New(env);
    SetCounters(r, c);
    r.Set("writeError", out.write_error());
    return r;
  }

  // The record structs as this compiler laid them out, in src/generated/vocab.ts's
  // shape ({ MSG: { size, off: {...}, len: {...} }, ... }): what JavaScript
  // checks its generated offsets against (src/native.ts, test/unit/vocab.test.ts).
  static Napi::Value Layout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    for (const auto& s : unixsock_vocab_structs) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("size", (double)s.size);
      o.Set("off", Napi::Object::New(env));
      o.Set("len", Napi::Object::New(env));
      r.Set(s.type, o);
    }
    for (const auto& f : unixsock_vocab_fields) {
      Napi::Object o = r.Get(f.type).As<Napi::Object>();
      o.Get("off").As<Napi::Object>().Set(f.name, (double)f.off);
      o.Get("len").As<Napi::Object>().Set(f.name, (double)f.size);
    }
    return r;
  }

  Filters f_;
  unixsock_bpf* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  // used only while choosing a strategy
  btf* vmlinux_btf_ = nullptr;
  unixsock_bpf* names_ = nullptr;
  unixsock::Ring ring_;
  size_t ring_size_ = 0;
  int ring_error_ = -ENODEV;
  std::string strategy_;
  Napi::Reference<Napi::Array> attempts_;
  Napi::FunctionReference end_cb_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  bool started_ = false;
  int poll_error_ = 0;
  std::vector<uint8_t> batch_;
  std::chrono::steady_clock::time_point last_flush_;
  std::unique_ptr<unixsock::PcapngOut> out_;
  std::mutex pub_mu_;
  unixsock::Counters pub_;  // the writer's counters as last published by the worker
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  unixsock::priv::AtLoad();  // before anything else: no file is opened with capabilities in effect
  return Capture::Init(env, exports);
}

NODE_API_MODULE(unixsock, InitAll)
