// The first code of the executable (main.ts imports it before anything else).
//
// Node starts its inspector (a debugger on 127.0.0.1:9229 that runs any
// JavaScript sent to it) when the process receives SIGUSR1, and the member who
// runs a capture may signal it (same uid): measured with the build of e9f621b,
// `kill -USR1` from the member made a capture listen on 9229. In an executable
// with capabilities that would be the member's code running with them. So,
// when privileged, before anything else:
//  - SIGUSR1 gets a handler of ours (libuv's handler replaces Node's, which
//    was the one that starts the inspector);
//  - if the inspector already runs (SIGUSR1 came during Node's own start-up,
//    before this code), the capture refuses to run.
// Also the environment goes (TZ aside): glibc and Node already ignore what is
// dangerous in secure execution (LD_*, NODE_OPTIONS, TMPDIR...), but the
// bundled yargs builds a file name from LANG/LC_* and reads it as JSON.
// The executable is built with --disable-sigusr1 (scripts/make-sea.sh), so
// Node itself never starts the inspector on SIGUSR1, also not during its own
// start-up before this module runs; what is here is the second line.
import { privileged } from './privilege';

export const PRIVILEGED = privileged();
// node:inspector is loaded only when privileged, the only case it is asked
// about: an unprivileged run (Wireshark's start-up queries on a personal
// install) does without it.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when privileged (above)
const inspector = PRIVILEGED ? (require('node:inspector') as typeof import('node:inspector')) : undefined;

/** Exits if a debugger could reach this process: call before each privileged step. */
export function refuseDebugger(): void {
  if (inspector && inspector.url() !== undefined) {
    try {
      inspector.close();
    } catch {
      // exiting anyway
    }
    process.stderr.write('unixsock: a debugger was started in this capture (SIGUSR1): refusing to run\n');
    process.exit(1);
  }
}

if (PRIVILEGED) {
  process.on('SIGUSR1', () => {});
  for (const k of Object.keys(process.env)) if (k !== 'TZ') delete process.env[k];
  refuseDebugger();
}
