import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** node_modules/.bin, first on PATH for every command the suite runs. */
export const BIN = join(ROOT, 'node_modules', '.bin');
const env = { ...process.env, PATH: `${BIN}:${process.env.PATH ?? ''}` };

/**
 * Runs a command in the repository with inherited output; resolves with its exit code and,
 * with `capture`, what it printed (still shown as it comes). With `timeoutMinutes` it runs
 * in its own process group, ended whole when the time is up.
 */
export function runCommand(cmd: string, args: string[], options: { capture?: boolean; timeoutMinutes?: number } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, detached: options.timeoutMinutes !== undefined, stdio: ['ignore', options.capture ? 'pipe' : 'inherit', options.capture ? 'pipe' : 'inherit'] });
    // Ctrl-C or CI's stop reach the detached group too.
    const forward = (signal: NodeJS.Signals) => {
      try {
        process.kill(options.timeoutMinutes === undefined ? child.pid! : -child.pid!, signal);
      } catch {
        // already gone
      }
      process.exit(130);
    };
    process.once('SIGINT', forward);
    process.once('SIGTERM', forward);
    const watchdog = options.timeoutMinutes === undefined ? undefined : setTimeout(() => {
      process.stdout.write(`\n${cmd} ${args.join(' ')}: still running after ${options.timeoutMinutes} min; ending it (a hung test or a leaked process)\n`);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMinutes * 60_000);
    let output = '';
    const tee = (stream: NodeJS.WritableStream) => (chunk: Buffer) => {
      output += chunk.toString();
      stream.write(chunk);
    };
    child.stdout?.on('data', tee(process.stdout));
    child.stderr?.on('data', tee(process.stderr));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(watchdog);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({ code: code ?? 1, output });
    });
  });
}
