// The capture object JavaScript sees (src/native.ts: NativeCapture): the
// N-API glue around the loader (loader.h) and the worker thread that reads the
// ring buffer in place (ring.h) and turns the records into pcapng enhanced
// packet blocks (pcapng_out.h): written to the output fd, or, for the
// readable dump, handed to JavaScript's onBatch as Buffers of whole blocks
// (timestamps CLOCK_MONOTONIC), which src/records.ts reads back.
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
