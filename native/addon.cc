// The addon's entry point and its free functions; the capture object is
// capture.cc, the loader loader.cc. src/native.ts declares what JavaScript sees.
#include <napi.h>

#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "pcapng_out.h"
#include "privilege.h"
#include "unixsock_vocab.h"

static_assert(sizeof(struct unixsock_msg) == UNIXSOCK_MSG_SIZE, "unixsock_msg size");
static_assert(sizeof(struct unixsock_data) == UNIXSOCK_DATA_HDR_SIZE, "unixsock_data size");

namespace {

Napi::Value ClockOffset(const Napi::CallbackInfo& info) {
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
Napi::Value ReaderGone(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), "Usage: readerGone(fd)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  struct pollfd p = {info[0].As<Napi::Number>().Int32Value(), POLLOUT, 0};
  bool gone = poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
  return Napi::Boolean::New(info.Env(), gone);
}

// writeRecords(fd, batch, clockOffset): the capture's pcapng writer run on
// records given in the batch format (tests and benchmarks: the same code
// that writes a live capture). Returns the writer's counters.
Napi::Value WriteRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsBigInt()) {
    Napi::TypeError::New(env, "Usage: writeRecords(fd, batch, clockOffset)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool lossless;
  unixsock::PcapngOut out(info[0].As<Napi::Number>().Int32Value(), info[2].As<Napi::BigInt>().Int64Value(&lossless), 0);
  // optional [{cgroupId, id, name[, path]}]: container names, as a capture's setIdentity gives them
  unixsock::IdentityTable ids;
  if (info.Length() > 3 && info[3].IsArray()) {
    Napi::Array a = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Object e = a.Get(i).As<Napi::Object>();
      Napi::Value p = e.Get("path");
      ids.Set(e.Get("cgroupId").As<Napi::BigInt>().Uint64Value(&lossless), e.Get("id").As<Napi::String>().Utf8Value(),
              e.Get("name").As<Napi::String>().Utf8Value(), p.IsString() ? p.As<Napi::String>().Utf8Value() : "");
    }
    ids.Sync();
    out.set_identities(&ids);
  }
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
  out.End();
  const auto& c = out.counters();
  Napi::Object r = Napi::Object::New(env);
  unixsock::SetCounters(r, c);
  r.Set("writeError", out.write_error());
  return r;
}

// The record structs as this compiler laid them out, in src/generated/vocab.ts's
// shape ({ MSG: { size, off: {...}, len: {...} }, ... }): what JavaScript
// checks its generated offsets against (src/native.ts, test/unit/vocab.test.ts).
Napi::Value Layout(const Napi::CallbackInfo& info) {
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

}  // namespace

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  unixsock::priv::AtLoad();  // before anything else: no file is opened with capabilities in effect
  exports.Set("clockOffsetNs", Napi::Function::New(env, ClockOffset));
  exports.Set("layout", Napi::Function::New(env, Layout));
  exports.Set("readerGone", Napi::Function::New(env, ReaderGone));
  exports.Set("writeRecords", Napi::Function::New(env, WriteRecords));
  return unixsock::InitCapture(env, exports);
}

NODE_API_MODULE(unixsock, InitAll)
