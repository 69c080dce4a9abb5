// The log: a file named by --log-file (Wireshark shows anything on stderr as
// an error, so routine messages never go there in extcap mode).
import * as fs from 'node:fs';
import { openUserOutput } from './privilege';

let fd: number | undefined;
let debugOn = false;

export function openLog(file: string | undefined, debug: boolean): void {
  debugOn = debug;
  if (!file) return;
  fd = openUserOutput(file, true, `cannot open log file "${file}"`);
}

/** The log's open file (the addon writes libbpf's output into it with --debug). */
export function logFd(): number | undefined {
  return fd;
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
