/**
 * Start-time checks of the culler's configuration that zod cannot express: the cron
 * expression is parsed by node-cron itself, so a typo fails at start, not at 3 am.
 */
import cron from 'node-cron';
import type { Config } from '../config/schema.ts';

/**
 * Throws an Error naming `culler.schedule` when the cron expression is invalid.
 * The hub calls it at startup, before anything is scheduled.
 */
export function checkCullerConfig(config: Pick<Config, 'culler'>): void {
  const { schedule } = config.culler;
  const result = cron.validateDetailed(schedule);
  if (result.valid) return;
  const details = result.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  throw new Error(
    `culler.schedule: ${JSON.stringify(schedule)} is not a valid cron expression` +
      `${details ? ` (${details})` : ''}; expected e.g. "*/5 * * * *" (every 5 minutes)`,
  );
}
