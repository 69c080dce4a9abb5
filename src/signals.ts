// Stop requests (SIGTERM, SIGINT, SIGHUP), caught from the moment the
// executable's own code runs: main.ts imports this module first. Wireshark
// stops an extcap with SIGTERM, also while it is still starting (the user
// pressed Stop at once). The probes load synchronously (0.15-0.2 s here, 2 s
// with a 1 GiB ring: the kernel zeroes it), and a signal left to its default
// action then killed the process (status 143): no statistics block, and
// Wireshark reported a failed extcap. Caught, a signal is handled once start-up
// returns to the event loop; the capture then ends as after any stop.
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

let first: NodeJS.Signals | undefined;
let listener: ((sig: NodeJS.Signals) => void) | undefined;

for (const s of STOP_SIGNALS) {
  process.on(s, (sig: NodeJS.Signals) => {
    first ??= sig;
    listener?.(sig);
  });
}

/** The first stop signal received so far, if any. */
export function stopRequested(): NodeJS.Signals | undefined {
  return first;
}

/** Calls fn on every stop signal from now on, and at once if one came already. */
export function onStop(fn: ((sig: NodeJS.Signals) => void) | undefined): void {
  listener = fn;
  if (fn && first) fn(first);
}
