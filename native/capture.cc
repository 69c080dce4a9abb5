// The capture object (capture.h): options in, the loader, the worker thread.
#include "capture.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <future>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

extern "C" {
#include <bpf/libbpf.h>
}

#include "loader.h"
#include "privilege.h"
#include "ring.h"
#include "unixsock_vocab.h"
#include "writer_sched.h"

namespace {

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "Capture",
                                    {InstanceMethod("start", &Capture::Start), InstanceMethod("stop", &Capture::Stop),
                                     InstanceMethod("stats", &Capture::Stats), InstanceMethod("close", &Capture::Close),
                                     InstanceMethod("setIdentity", &Capture::SetIdentity),
                                     InstanceMethod("unknownCgroups", &Capture::UnknownCgroups),
                                     InstanceMethod("writerScheduling", &Capture::WriterScheduling),
                                     InstanceMethod("demoteWriter", &Capture::DemoteWriter),
                                     InstanceAccessor("strategy", &Capture::Strategy, nullptr),
                                     InstanceAccessor("attempts", &Capture::Attempts, nullptr),
                                     InstanceAccessor("timings", &Capture::Timings, nullptr)});
    exports.Set("Capture", fn);
    return exports;
  }

  explicit Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "Usage: new Capture({ strategy, ringBytes, filters... })").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    unixsock_filter filter;
    std::string bad = FilterFrom(o, &filter);
    if (!bad.empty()) {
      Napi::TypeError::New(env, bad).ThrowAsJavaScriptException();
      return;
    }
    uint32_t ring_bytes =
        o.Get("ringBytes").IsNumber() ? o.Get("ringBytes").As<Napi::Number>().Uint32Value() : 64u << 20;
    if (!filter.self_tgid) filter.self_tgid = getpid();
    // the worker looks every 5 ms anyway: the kernel wakes it early only when the ring fills up
    if (!filter.wakeup_bytes) filter.wakeup_bytes = std::max<uint64_t>(256 * 1024, ring_bytes / 8);
    std::string forced = o.Get("strategy").IsString() ? o.Get("strategy").As<Napi::String>().Utf8Value() : "";

    // the log file JavaScript opened (never a path opened here: see privilege.h)
    int debug_fd = o.Get("libbpfLogFd").IsNumber() ? o.Get("libbpfLogFd").As<Napi::Number>().Int32Value() : -1;
    if (debug_fd >= 0 && !unixsock::HasLibbpfDebugLog()) {
      int fd = fcntl(debug_fd, F_DUPFD_CLOEXEC, 3);
      if (fd >= 0) unixsock::SetLibbpfDebugLog(fdopen(fd, "a"));
    }
    std::vector<unixsock::Attempt> tried;
    // CAP_BPF, CAP_PERFMON in effect from here to the ring's mapping (see privilege.h)
    auto raised = std::make_unique<unixsock::priv::Raised>();
    probes_.reset(unixsock::LoadProbes(filter, ring_bytes, forced, &tried, &timings_, &ring_));
    if (probes_) {
      auto t = std::chrono::steady_clock::now();
      ring_size_ = probes_->ring_size();
      // (mapped already by the loader, beside the loading, unless that failed)
      ring_error_ = ring_.is_open() ? 0 : ring_.Open(probes_->ring_fd(), ring_size_);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t);
      timings_ += ", ring " + std::to_string(ms.count());
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
    Napi::Array attempts = Napi::Array::New(env);
    for (const auto& t : tried) {
      Napi::Object a = Napi::Object::New(env);
      a.Set("strategy", t.strategy);
      a.Set("ok", t.ok);
      a.Set(t.ok ? "note" : "error", t.text);
      attempts.Set(attempts.Length(), a);
      if (t.ok) strategy_ = t.strategy;
    }
    attempts_ = Napi::Persistent(attempts);
    if (!probes_) {
      std::string msg = "no attach strategy works on this kernel:";
      for (const auto& t : tried) msg += " " + t.strategy + ": " + t.text + ";";
      if (!msg.empty() && msg.back() == ';') msg.pop_back();
      Napi::Error e = Napi::Error::New(env, msg);
      e.Set("code", "ENOSTRATEGY");
      e.Set("attempts", attempts);
      e.ThrowAsJavaScriptException();
    }
  }

  ~Capture() override { Teardown(); }

 private:
  // The settings and filters (struct unixsock_filter, bpf/unixsock.h) from
  // the JavaScript object: every field under its camelCase name (src/capture.ts
  // fills it; UnixsockFilter in src/generated/vocab.ts), 0 when absent. "" or
  // the TypeError's sentence.
  static std::string FilterFrom(Napi::Object o, unixsock_filter* f) {
    memset(f, 0, sizeof(*f));
    for (const auto& fd : unixsock_vocab_fields) {
      if (strcmp(fd.type, "FILTER") != 0) continue;
      Napi::Value v = o.Get(fd.js);
      uint8_t* at = reinterpret_cast<uint8_t*>(f) + fd.off;
      if (v.IsUndefined()) continue;
      if (fd.kind == 'i') {
        double d = v.IsBoolean()  ? (v.As<Napi::Boolean>() ? 1 : 0)
                   : v.IsNumber() ? v.As<Napi::Number>().DoubleValue()
                                  : -1;
        if (!(d >= 0 && d < 18446744073709551616.0 && d == (double)(uint64_t)d) ||
            (fd.size < 8 && (uint64_t)d >> (8 * fd.size)))
          return std::string(fd.js) + ": not a whole number that fits " + std::to_string(fd.size) + " bytes";
        uint64_t u = (uint64_t)d;
        memcpy(at, &u, fd.size);  // little-endian, like the BPF side (x86_64, arm64)
      } else {
        std::string bytes;
        if (v.IsBuffer()) {
          auto b = v.As<Napi::Buffer<char>>();
          bytes.assign(b.Data(), b.Length());
        } else if (v.IsString()) {
          bytes = v.As<Napi::String>().Utf8Value();
        } else {
          return std::string(fd.js) + ": not a Buffer or string";
        }
        size_t room = fd.kind == 's' ? fd.size - 1 : fd.size;  // a string keeps its NUL
        if (bytes.size() > room)
          return std::string(fd.js) + " filter too long (" + std::to_string(bytes.size()) + " bytes, at most " +
                 std::to_string(room) + ")";
        memcpy(at, bytes.data(), bytes.size());
      }
    }
    return "";
  }

  Napi::Value Strategy(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), strategy_); }
  Napi::Value Attempts(const Napi::CallbackInfo& info) { return attempts_.Value(); }
  Napi::Value Timings(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), timings_); }

  // Hands JavaScript what the writer produced in memory (the readable dump's batches).
  void Hand(std::vector<uint8_t> out) {
    if (out.empty()) return;
    auto* v = new std::vector<uint8_t>(std::move(out));
    napi_status st = tsfn_.BlockingCall(v, [](Napi::Env env, Napi::Function cb, std::vector<uint8_t>* data) {
      auto buf = Napi::Buffer<uint8_t>::New(
          env, data->data(), data->size(), [](Napi::Env, uint8_t*, std::vector<uint8_t>* d) { delete d; }, data);
      cb.Call({buf});
    });
    if (st != napi_ok) delete v;
  }

  // Writes what waits, gives the ring its space back, and hands JavaScript
  // its batch (when the output is memory).
  void WriteOut(bool behind = false) {
    out_->Write(behind);  // afterwards nothing refers to the ring (sends still waiting hold copies)
    ring_.Release();
    if (to_js_) Hand(out_->TakeOutput());
  }

  // The worker: reads the ring in place and writes pcapng blocks that point
  // into it, to the output fd or (the readable dump) into memory handed to
  // JavaScript, and gives the ring its space back once they are written.
  // sched: told how the thread is scheduled, before anything is read.
  void Run(int flush_ms, std::promise<unixsock::WriterSched>* sched) {
    last_flush_ = std::chrono::steady_clock::now();
    pthread_setname_np(pthread_self(), "unixsock-write");  // for top -H, perf, /proc/PID/task/*/comm
    // the readable dump's writer hands JavaScript its batches: no hurry there
    unixsock::WriterSched ws;
    ws.tid = (pid_t)syscall(SYS_gettid);
    if (!to_js_) ws = unixsock::RaiseWriterPriority();
    sched->set_value(ws);
    unixsock::Pacer pacer;
    // Messages the ring dropped whole leave no record: the first record the
    // kernel wrote after the drop counter rose says so (DROPS_BEFORE).
    uint64_t dropped = 0;
    unsigned long drop_mark = 0;
    bool drop_pending = false;
    auto read = [&](size_t max) {
      uint64_t d = LostMessages();
      if (d != dropped) {
        dropped = d;
        drop_mark = ring_.Produced();  // the drops came before this position
        drop_pending = true;
      }
      return ring_.Read(
          [&](const uint8_t* p, size_t n) {
            if (drop_pending && (long)(ring_.Position() - drop_mark) >= 0) {
              drop_pending = false;
              out_->DropsBefore();
            }
            out_->Record(p, n);
          },
          max);
    };
    while (running_.load()) {
      // also records submitted without a wakeup; a backlog in steps, each
      // written and given back to the kernel before the next is read
      size_t got = read(kWriteBytes);
      // the most the kernel held for us: after a stall of the writer (a
      // write() that waited), what piled up meanwhile, at most the ring
      size_t used = ring_.Used();
      if (used > ring_peak_.load(std::memory_order_relaxed)) ring_peak_.store(used, std::memory_order_relaxed);
      auto now = std::chrono::steady_clock::now();
      bool due = now - last_flush_ >= std::chrono::milliseconds(flush_ms);
      // a quarter of the ring in use: the output is behind
      bool behind = used >= ring_size_ / 4;
      // write when due, when 2 MiB of output waits, or before what we hold of the ring passes 1/16 of it
      if (due || out_->pending_bytes() >= kWriteBytes || ring_.Held() >= ring_size_ / 16) {
        WriteOut(behind);
        last_flush_ = now;
      } else if (!out_->holds_records()) {
        ring_.Release();
      }
      out_->Drain();  // output held in memory: what the pipe takes now
      Publish();
      if (out_->write_error()) break;
      if (got >= kWriteBytes / 2) {  // a backlog: on without waiting (but see writer_sched.h)
        pacer.Pace();
        continue;
      }
      // output held in memory for a pipe: look again soon (a full pipe's
      // POLLOUT comes with its first free page, and the reader then took turns with us page by page)
      int e = ring_.Wait(out_->spilled() ? 1 : 5);
      pacer.Slept();
      if (e < 0) {
        poll_error_ = e;
        break;
      }
    }
    while (read(kWriteBytes) > 0) {
      if (out_->pending_bytes() >= kWriteBytes) WriteOut();
      pacer.Pace();
    }
    out_->FlushPending();
    WriteOut();
    out_->End();  // the spill written, the write-behind ended: JavaScript closes the file after onEnd
    Publish(true);
    ring_.Release();
  }

  static constexpr size_t kWriteBytes = 2u << 20;

  // MSG records the ring had no room for, over every CPU (the .bss counters).
  uint64_t LostMessages() const {
    uint64_t sum = 0;
    int ncpu = std::min(libbpf_num_possible_cpus(), UNIXSOCK_STAT_CPUS);
    for (int c = 0; c < ncpu; c++) sum += probes_->stat_lines()[c].v[UNIXSOCK_STAT_LOST_MSGS];
    return sum;
  }

  // The writer's counters, where the JavaScript thread can read them. In the
  // loop only when the lock is free: the JavaScript thread, at normal
  // priority, may be preempted while it holds it, and the real-time writer
  // must not wait for it (the next turn publishes); at the end, always.
  void Publish(bool last = false) {
    const auto& c = out_->counters();
    std::unique_lock<std::mutex> lock(pub_mu_, std::defer_lock);
    if (last) lock.lock();
    else if (!lock.try_lock()) return;
    pub_ = c;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!probes_ || started_) {
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
    } else {
      // the readable dump: the same blocks, in memory, handed to onBatch;
      // timestamps stay CLOCK_MONOTONIC (clock offset 0), as the kernel stamped them
      out_.reset(new unixsock::PcapngOut(unixsock::PcapngOut::kMemory, 0, 0));
      to_js_ = true;
    }
    out_->set_identities(&ids_);
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
    // The worker takes no signals: SIGTERM and friends stay with Node's main
    // thread, where the capture's handlers run.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    std::promise<unixsock::WriterSched> sched;
    std::future<unixsock::WriterSched> told = sched.get_future();
    thread_ = std::thread([this, flush_ms, &sched] {
      Run(flush_ms, &sched);
      tsfn_.Release();
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    sched_ = told.get();  // before sched goes out of scope
    return env.Undefined();
  }

  // setIdentity(cgroupId, containerId, name[, path]): what the writer puts in
  // the records of that cgroup (containerId '': a host cgroup, nothing to
  // add), and the name of its stream-view address (path: its cgroup path).
  Napi::Value SetIdentity(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsBigInt() || !info[1].IsString() || !info[2].IsString()) {
      Napi::TypeError::New(env, "Usage: setIdentity(cgroupId, containerId, name[, path])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    bool lossless;
    ids_.Set(info[0].As<Napi::BigInt>().Uint64Value(&lossless), info[1].As<Napi::String>().Utf8Value(),
             info[2].As<Napi::String>().Utf8Value(),
             info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "");
    return env.Undefined();
  }

  // The cgroup ids the writer met that setIdentity has not answered yet (each once).
  Napi::Value UnknownCgroups(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint64_t> ids = ids_.TakeUnknown();
    Napi::Array r = Napi::Array::New(env, ids.size());
    for (size_t i = 0; i < ids.size(); i++) r.Set(i, Napi::BigInt::New(env, ids[i]));
    return r;
  }

  // How the writer thread is scheduled: {policy: 'SCHED_FIFO' | 'SCHED_OTHER',
  // priority, nice, text} (writer_sched.h), or undefined before start().
  Napi::Value WriterScheduling(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!started_) return env.Undefined();
    Napi::Object r = Napi::Object::New(env);
    bool fifo = sched_.policy == SCHED_FIFO;
    r.Set("policy", fifo ? "SCHED_FIFO" : "SCHED_OTHER");
    r.Set("priority", fifo ? sched_.value : 0);
    r.Set("nice", fifo ? 0 : sched_.value);
    r.Set("tid", sched_.tid);
    r.Set("text", sched_.Describe());
    return r;
  }

  // The writer back to normal scheduling (on SIGXCPU: it used RLIMIT_RTTIME
  // of CPU without sleeping). Returns what it says in the log.
  Napi::Value DemoteWriter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!started_ || sched_.policy != SCHED_FIFO) return Napi::String::New(env, "");
    int e = unixsock::DemoteWriter(sched_.tid);
    if (e < 0) return Napi::String::New(env, std::string("cannot put it back to normal scheduling: ") + strerror(-e));
    sched_.policy = SCHED_OTHER;
    sched_.value = 0;
    sched_.fifo_errno = 0;
    return Napi::String::New(env, "put back to normal scheduling");
  }

  // Asks the worker to drain and stop; onEnd is called after the last batch.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    running_ = false;
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    if (!probes_) return r;
    // the per-CPU lines in the object's .bss, mapped at load (no bpf() call: see unixsock.bpf.c)
    int ncpu = std::min(libbpf_num_possible_cpus(), UNIXSOCK_STAT_CPUS);
    const char* names[] = {"sends",         "bytes",     "capturedBytes", "lostMessages",
                           "lostFragments", "lostBytes", "readErrors"};
    for (uint32_t k = 0; k < UNIXSOCK_STAT_MAX; k++) {
      uint64_t sum = 0;
      for (int c = 0; c < ncpu; c++) sum += probes_->stat_lines()[c].v[k];
      r.Set(names[k], Napi::Number::New(env, (double)sum));
    }
    if (out_) {
      unixsock::Counters c;
      {
        std::lock_guard<std::mutex> lock(pub_mu_);
        c = pub_;
      }
      unixsock::SetCounters(r, c);
      r.Set("spillPeak", (double)c.spill_peak);  // most bytes held in memory for a slow pipe
      r.Set("ringPeak", (double)ring_peak_.load(std::memory_order_relaxed));
      r.Set("ringSize", (double)ring_size_);
    }
    return r;
  }

  void Teardown() {
    running_ = false;
    if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
    ring_.Close();
    probes_.reset();  // detaches every program, frees every map
  }

  // Detaches every program and frees every map. Call after onEnd.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

 private:
  std::unique_ptr<unixsock::Probes> probes_;
  unixsock::Ring ring_;
  size_t ring_size_ = 0;
  std::atomic<size_t> ring_peak_{0};  // the most bytes the writer saw in use in the ring
  int ring_error_ = -ENODEV;
  std::string strategy_;
  std::string timings_;          // the loader's phases in ms, for the log
  unixsock::WriterSched sched_;  // JavaScript's thread only (told by the worker at start)
  Napi::Reference<Napi::Array> attempts_;
  Napi::FunctionReference end_cb_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  bool started_ = false;
  int poll_error_ = 0;
  bool to_js_ = false;  // the output is memory handed to onBatch
  std::chrono::steady_clock::time_point last_flush_;
  std::unique_ptr<unixsock::PcapngOut> out_;
  unixsock::IdentityTable ids_;  // container names for out_'s records
  std::mutex pub_mu_;
  unixsock::Counters pub_;  // the writer's counters as last published by the worker
};

}  // namespace

namespace unixsock {

Napi::Object InitCapture(Napi::Env env, Napi::Object exports) { return Capture::Init(env, exports); }

void SetCounters(Napi::Object r, const Counters& c) {
  r.Set("messages", (double)c.messages);
  r.Set("packets", (double)c.packets);
  r.Set("incomplete", (double)c.incomplete);
  r.Set("orphanRecords", (double)c.orphans);
  r.Set("badRecords", (double)c.bad);
}

}  // namespace unixsock
