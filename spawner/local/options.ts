/**
 * What the local backend is given (its options and timeouts, where the cluster image's
 * entrypoint is) and what it hands its launch and scaling steps. Its own module, so those
 * steps and the backend need not import each other.
 */
import { resolve } from 'node:path';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../shared/log.ts';
import type { ClusterRecord, clusterPaths } from './state.ts';
import type { Tenancy, TenancyMode } from './tenancy.ts';

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
  /** Defaults to images/cluster/bin/start of this checkout (as root, a copy students can run). */
  entrypoint?: string;
  /** `accounts` (one OS account per student) or `shared`; default: accounts when the hub is root. */
  mode?: TenancyMode;
  /** Instructors' logins: shared mode's one-student rule does not count them. */
  admins?: readonly string[];
  /** Environment the cluster's is derived from (only a safe subset passes). Default process.env. */
  env?: NodeJS.ProcessEnv;
  timeouts?: Partial<LocalTimeouts>;
  /** Picks `count` free ports (default: the OS's); tests pass one that hands out a taken port. */
  ports?: (count: number) => Promise<number[]>;
  /** Most workers a launch or scale may ask for: `spawn.maxWorkers` (default: no limit). */
  maxWorkers?: number;
}

/** What a launch or a scale needs from the backend that runs it. */
export interface LaunchContext {
  options: LocalBackendOptions;
  timeouts: LocalTimeouts;
  /** The entrypoint clusters run (as root, the copy students can run). */
  entrypoint: string;
  tenancy: Tenancy;
  /** The cluster's paths and the environments its processes get. */
  env(record: ClusterRecord): { paths: ReturnType<typeof clusterPaths>; common: Record<string, string>; scheduler: Record<string, string> };
  /** Kill every group of the record and remove its state and runtime files. */
  teardown(user: string, record: ClusterRecord | undefined): Promise<void>;
}
