/** Request bodies: parsed by @koa/bodyparser, validated by zod, errors as 400/422. */
import type { Context } from 'koa';
import { z } from 'zod';
import { HttpError } from '../errors.ts';

/** Validates `ctx.request.body` against a strict schema: unknown fields are a 400, bad values a 422. */
export function readBody<T extends z.ZodType>(ctx: Context, schema: T): z.infer<T> {
  const body = (ctx.request as { body?: unknown }).body ?? {};
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const unknown = result.error.issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') throw new HttpError(400, `unknown field${unknown.keys.length > 1 ? 's' : ''}: ${unknown.keys.join(', ')}`);
  const issue = result.error.issues[0]!;
  if (issue.code === 'invalid_type' && issue.path.length === 0) throw new HttpError(400, 'the request body must be a JSON object');
  throw new HttpError(422, `${issue.path.join('.') || 'body'}: ${issue.message}`);
}

/** A worker count is a JSON number; the rule (an integer within the limits, 422) is the manager's. */
export const workersField = z.number();
