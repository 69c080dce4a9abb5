// The capture object JavaScript sees (src/native.ts: NativeCapture): the
// N-API glue around the loader (loader.h) and the worker thread that reads the
// ring buffer (ring.h) and either writes pcapng itself (pcapng_out.h) or hands
// JavaScript batches of raw records.
//
// Batch format (host byte order, little-endian): repeated
//   u32 length, u32 0, then `length` bytes of one record (struct unixsock_msg,
//   or struct unixsock_data and its len bytes), zero-padded to a multiple of 8.
#ifndef UNIXSOCK_CAPTURE_H
#define UNIXSOCK_CAPTURE_H

#include <napi.h>

#include "pcapng_out.h"

namespace unixsock {

// Adds the Capture class to the addon's exports.
Napi::Object InitCapture(Napi::Env env, Napi::Object exports);

// The writer's counters under the names src/native.ts (WriterStats) gives them.
void SetCounters(Napi::Object r, const Counters& c);

}  // namespace unixsock

#endif  // UNIXSOCK_CAPTURE_H
