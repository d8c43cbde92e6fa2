/**
 * The logging shape every layer shares: pino's call shape (`log.info({user}, 'msg')`
 * or `log.info('msg')`), so the hub can pass a pino logger and tests a silent one.
 * An error is logged one way: the Error itself under `err` (`log.error({ err }, 'what failed')`),
 * which pino serialises with its type, message and stack.
 */

/** One level of a pino-compatible logger. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** A pino-compatible logger (a `pino()` instance satisfies it). */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger that adds `bindings` to every line (pino's `child`). */
  child?(bindings: Record<string, unknown>): Logger;
}

/** The level names `Logger` has, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A logger that drops everything, so callers never need `if (log)`. */
export function silentLogger(): Logger {
  const drop: LogFn = () => {};
  return { debug: drop, info: drop, warn: drop, error: drop, child: () => silentLogger() };
}

/** `log.child(bindings)` when the logger has it, the logger itself otherwise. */
export function childLogger(log: Logger, bindings: Record<string, unknown>): Logger {
  return log.child ? log.child(bindings) : log;
}
