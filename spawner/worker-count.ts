/** The one worker-count rule, applied by the manager and again by each backend. */
import { ClusterError } from './types.ts';

/** An integer from 0 to `max`; anything else is a 422 that names the limits and the value. */
export function checkWorkerCount(workers: number, max: number): void {
  if (!Number.isInteger(workers) || workers < 0 || workers > max) {
    throw new ClusterError(`workers must be an integer from 0 to ${max}, got ${workers}`, 422);
  }
}
