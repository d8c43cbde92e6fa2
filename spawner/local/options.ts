/**
 * What the local backend is given (`LocalBackendOptions`) and what its parts run with: the
 * same with every default filled in (`LocalSettings`), read by the launch and the workers.
 */
import { resolve } from 'node:path';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../shared/log.ts';
import { freePorts } from './processes.ts';

/** The entrypoint of the cluster image, run here as plain processes. */
export const ENTRYPOINT = resolve(import.meta.dirname, '../../images/cluster/bin/start');

export interface LocalTimeouts {
  /** Scheduler engines (Jupyter, Dask, IPython controller, Spark master) answering. */
  schedulerMs: number;
  /** Workers joining every engine, at start and on scale-up. */
  workersMs: number;
  /** SIGTERM → SIGKILL for stop; a scale-down also allows the Dask retirement. */
  stopGraceMs: number;
}

export interface LocalBackendOptions {
  config: Config['local'];
  /** Workspaces go to `{stateDir}/workspaces/{login}`, logs and state to `{stateDir}/clusters/{login}`. */
  stateDir: string;
  /** bin directory of the virtualenv from `ensureVenv`. */
  venvBin: string;
  log: Logger;
  /** Defaults to images/cluster/bin/start of this checkout. */
  entrypoint?: string;
  /** Environment the cluster's is derived from (only a safe subset passes). Default process.env. */
  env?: NodeJS.ProcessEnv;
  timeouts?: Partial<LocalTimeouts>;
  /** Picks `count` free ports (default: the OS's); tests pass one that hands out a taken port. */
  ports?: (count: number) => Promise<number[]>;
  /** Most workers a launch or scale may ask for: `spawn.maxWorkers` (default: no limit). */
  maxWorkers?: number;
}

/** The backend's options with their defaults: nothing optional left. */
export interface LocalSettings {
  config: Config['local'];
  stateDir: string;
  venvBin: string;
  log: Logger;
  entrypoint: string;
  env: NodeJS.ProcessEnv;
  timeouts: LocalTimeouts;
  ports: (count: number) => Promise<number[]>;
  maxWorkers: number;
}

const DEFAULT_TIMEOUTS: LocalTimeouts = { schedulerMs: 180_000, workersMs: 180_000, stopGraceMs: 20_000 };

/** Fills in the defaults of `options`. */
export function localSettings(options: LocalBackendOptions): LocalSettings {
  return {
    config: options.config,
    stateDir: options.stateDir,
    venvBin: options.venvBin,
    log: options.log,
    entrypoint: options.entrypoint ?? ENTRYPOINT,
    env: options.env ?? process.env,
    timeouts: { ...DEFAULT_TIMEOUTS, ...options.timeouts },
    ports: options.ports ?? freePorts,
    maxWorkers: options.maxWorkers ?? Infinity,
  };
}
