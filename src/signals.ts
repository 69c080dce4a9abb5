// Stop requests (SIGTERM, SIGINT, SIGHUP) during start-up. Wireshark stops
// an extcap with SIGTERM, also while it is still starting (the user pressed
// Stop at once). The probes load synchronously (0.15-0.2 s here, 2 s with a
// 1 GiB ring: the kernel zeroes it), and a signal left to its default action
// then killed the process (status 143): no statistics block, and Wireshark
// reported a failed extcap. Caught, a signal is handled once start-up returns
// to the event loop; the capture then ends as after any stop.
//
// Caught from the moment the output is open (main.ts calls catchStops()), not
// earlier: a handler only runs when the event loop does, so a process blocked
// in opening a fifo nobody reads (-w FIFO) would then ignore Ctrl-C and
// SIGTERM. The --fifo of extcap mode is opened without blocking, after
// catchStops(). Before that, Node's own start-up (about 0.1 s, more under
// load) ends on SIGTERM as any program does.
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

let first: NodeJS.Signals | undefined;
let listener: ((sig: NodeJS.Signals) => void) | undefined;
let caught = false;

/** Catches stop signals from now on (once; later calls do nothing). */
export function catchStops(): void {
  if (caught) return;
  caught = true;
  for (const s of STOP_SIGNALS) {
    process.on(s, (sig: NodeJS.Signals) => {
      first ??= sig;
      listener?.(sig);
    });
  }
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
