// Errors a user can meet: each carries one sentence that says what to do.

/** Bad input (arguments, config values, capture filter): exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The capture could not start or went wrong: exit code 1. */
export class CaptureError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'CaptureError';
  }
}
