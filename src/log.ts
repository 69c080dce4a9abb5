// The log: a file named by --log-file (Wireshark shows anything on stderr as
// an error, so routine messages never go there in extcap mode).
import * as fs from 'node:fs';

let fd: number | undefined;
let debugOn = false;

export function openLog(file: string | undefined, debug: boolean): void {
  debugOn = debug;
  if (!file) return;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new Error(`cannot open log file "${file}": ${(e as NodeJS.ErrnoException).code}`);
  }
}

function write(level: string, msg: string): void {
  if (fd === undefined) return;
  try {
    fs.writeSync(fd, `${new Date().toISOString()} ${level} ${msg}\n`);
  } catch {
    // a failing log must not stop a capture
  }
}

export const log = {
  info: (msg: string) => write('info', msg),
  debug: (msg: string) => {
    if (debugOn) write('debug', msg);
  },
  error: (msg: string) => write('error', msg),
  isDebug: () => debugOn,
};

export function closeLog(): void {
  if (fd !== undefined) fs.closeSync(fd);
  fd = undefined;
}
