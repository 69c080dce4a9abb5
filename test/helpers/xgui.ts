// Driving Wireshark's Qt GUI in a private Xvfb with xdotool, as a user would
// with the mouse and keyboard. There is no window manager under Xvfb, so:
// keys go to a window only after `windowfocus` (XSetInputFocus), top-level
// windows (dialogs, popup menus) are found by name or as "the new visible
// window", and every wait polls with a deadline instead of sleeping a fixed
// time (a loaded machine takes seconds where an idle one takes milliseconds).
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { sleep, startXvfb } from './harness';

export interface Geometry {
  x: number;
  y: number;
  w: number;
  h: number;
}

export class XSession {
  /** the X display and the environment that names it, once start() has run */
  display = '';
  env: NodeJS.ProcessEnv;
  private xvfb?: ChildProcess;

  constructor(
    private readonly baseEnv: NodeJS.ProcessEnv,
    private readonly failureShot: string,
  ) {
    this.env = baseEnv;
  }

  async start(t: TestContext, width = 1400, height = 1000): Promise<void> {
    const x = await startXvfb(t, '-screen', '0', `${width}x${height}x24`);
    this.xvfb = x.proc;
    this.display = x.display;
    this.env = { ...this.baseEnv, DISPLAY: x.display };
    await this.until('the X server answers', () => spawnSync('xdotool', ['getmouselocation'], { env: this.env }).status === 0, 20000);
  }

  stop(): void {
    this.xvfb?.kill();
  }

  xdo(...args: (string | number)[]): string {
    return execFileSync('xdotool', args.map(String), { env: this.env, encoding: 'utf8' });
  }

  visibleWindows(): string[] {
    const r = spawnSync('xdotool', ['search', '--onlyvisible', '--class', '.'], { env: this.env, encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean);
  }

  windowName(id: string): string {
    return spawnSync('xdotool', ['getwindowname', id], { env: this.env, encoding: 'utf8' }).stdout.trim();
  }

  geometry(id: string): Geometry {
    const out = this.xdo('getwindowgeometry', '--shell', id);
    const v = (k: string) => Number(new RegExp(`^${k}=(\\d+)$`, 'm').exec(out)![1]);
    return { x: v('X'), y: v('Y'), w: v('WIDTH'), h: v('HEIGHT') };
  }

  /** Polls until check() is true; on timeout saves a screenshot and fails saying what was awaited. */
  async until<T>(what: string, check: () => T | undefined | false, ms = 60000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = check();
      if (v) return v;
      if (Date.now() > end) {
        this.screenshot(this.failureShot);
        const names = this.visibleWindows().map((w) => `"${this.windowName(w)}"`);
        throw new Error(`timed out waiting for ${what} (windows: ${names.join(', ')}; screen saved to ${this.failureShot})`);
      }
      await sleep(100);
    }
  }

  /** A visible top-level window whose name matches. */
  window(name: RegExp, ms?: number): Promise<string> {
    return this.until(`a window named ${name}`, () => this.visibleWindows().find((w) => name.test(this.windowName(w))), ms);
  }

  /** The next visible window not in `before` (popup menus have no name of their own). */
  newWindow(before: string[], what: string): Promise<string> {
    return this.until(what, () => this.visibleWindows().find((w) => !before.includes(w)));
  }

  click(win: string, x: number, y: number, button = 1, repeat = 1): void {
    // move twice: Qt highlights menu items on motion, not on a warp alone
    this.xdo('mousemove', '--window', win, x - 2, y, 'mousemove', '--window', win, x, y, 'click', '--repeat', repeat, button);
  }

  /** Keys reach a window only once it has the input focus (no window manager gives it). */
  type(win: string, text: string): void {
    this.xdo('windowfocus', '--sync', win, 'type', '--delay', 20, text);
  }

  key(win: string, ...keys: string[]): void {
    this.xdo('windowfocus', '--sync', win, 'key', ...keys);
  }

  screenshot(file: string): void {
    spawnSync('import', ['-window', 'root', file], { env: this.env });
  }
}
