/**
 * The process groups of one local cluster: the environment each gets, spawning the
 * scheduler and the workers (recorded in the state record), and tearing them all down.
 */
import { rm } from 'node:fs/promises';
import { clusterEnv, schedulerEnv, workerEnv } from './env.ts';
import type { LocalSettings } from './options.ts';
import { killGroups, spawnGroup, type GroupHandle } from './processes.ts';
import { clusterPaths, recordGroups, removeRecord, type ClusterRecord } from './state.ts';

/** The cluster's paths, the environment every group shares, and the scheduler's (with the token). */
export function clusterEnvs(settings: LocalSettings, record: ClusterRecord) {
  const paths = clusterPaths(settings.stateDir, record.user);
  const common = clusterEnv({
    base: settings.env, venvBin: settings.venvBin, config: settings.config,
    record, workspace: paths.workspace, runtimeDir: paths.runtimeDir,
  });
  return { paths, common, scheduler: schedulerEnv(common, record, settings.config) };
}

/** Spawns the scheduler group and records it (the caller writes the record). */
export function spawnScheduler(settings: LocalSettings, record: ClusterRecord): GroupHandle {
  const { paths, scheduler } = clusterEnvs(settings, record);
  const handle = spawnGroup({ command: settings.entrypoint, args: ['scheduler'], env: scheduler, cwd: paths.workspace, logFile: paths.schedulerLog });
  record.scheduler = { pgid: handle.pid };
  return handle;
}

/** Spawns worker `index` and records it (the caller writes the record). */
export function spawnWorker(settings: LocalSettings, record: ClusterRecord, index: number): GroupHandle {
  const { paths, common } = clusterEnvs(settings, record);
  const handle = spawnGroup({
    command: settings.entrypoint, args: ['worker'], env: workerEnv(common, index),
    cwd: paths.workspace, logFile: paths.workerLog(index),
  });
  record.workers.push({ index, pgid: handle.pid });
  return handle;
}

/** Kill every group of the record, remove the state file and runtime files (logs stay). */
export async function teardown(settings: LocalSettings, user: string, record: ClusterRecord | undefined): Promise<void> {
  const paths = clusterPaths(settings.stateDir, user);
  if (record) await killGroups(recordGroups(record), settings.timeouts.stopGraceMs);
  await removeRecord(paths.stateFile);
  await rm(paths.runtimeDir, { recursive: true, force: true });
}
