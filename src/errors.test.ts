import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KilnError } from './errors.js';

/** How a zod failure reads, in a file's words and in MLflow's (issue 11: values quoted, never secrets). */
function failure(schema: z.ZodType, input: unknown, place?: string): KilnError {
  const parsed = schema.safeParse(input);
  if (parsed.success) throw new Error('expected the input to fail');
  return KilnError.fromZod(place, parsed.error, input);
}

const params = z.object({
  num_leaves: z.number().int(),
  name: z.string().max(5),
  password: z.number(),
  api_key: z.number(),
  nested: z.object({ list: z.number() }),
});

describe('KilnError.fromZod', () => {
  it('names the place and field and quotes a short scalar as "(got …)"', () => {
    const e = failure(params.pick({ num_leaves: true }), { num_leaves: 2.5 }, 'train.yaml');
    expect(e.code).toBe('INVALID_PARAMETER_VALUE');
    expect(e.message).toBe('train.yaml: num_leaves: expected integer, received number (got 2.5)');
  });

  it('speaks MLflow for a REST body: "Invalid value X for parameter \'f\' supplied"', () => {
    const e = failure(params.pick({ num_leaves: true }), { num_leaves: true }, undefined);
    expect(e.message).toMatch(/^Invalid value true for parameter 'num_leaves' supplied: expected number/);
    const missing = failure(params.pick({ num_leaves: true }), {}, undefined);
    expect(missing.message).toMatch(/^Invalid value for parameter 'num_leaves': /);
  });

  it('clips long strings to 40 characters and JSON-escapes control characters', () => {
    const long = `${'a'.repeat(100)}`;
    const e = failure(params.pick({ name: true }), { name: long }, 'spec');
    expect(e.message).toContain(`(got "${'a'.repeat(40)}…")`);
    expect(e.message).not.toContain('a'.repeat(41));
    const ctl = failure(params.pick({ name: true }), { name: '\u001b[2J!!' }, 'spec');
    expect(ctl.message).toContain('(got "\\u001b[2J!!")');
    expect(ctl.message).not.toContain('\u001b');
  });

  it('never quotes a value under a field named like a secret, nor objects and lists', () => {
    for (const field of ['password', 'api_key'] as const) {
      const e = failure(params.pick({ [field]: true } as { password: true }), { [field]: 'hunter2-secret' });
      expect(e.message, field).not.toContain('hunter2');
      expect(e.message, field).toContain(`'${field}'`);
    }
    const nested = failure(params.pick({ nested: true }), { nested: [1, 2] }, 'spec');
    expect(nested.message).toMatch(/^spec: nested: expected object, received array$/);
  });

  it("names an empty record key as '' and every offending field once", () => {
    const schema = z.object({
      features: z.record(z.string().min(1, 'a derived feature needs a name'), z.string()),
    });
    const e = failure(schema, { features: { '': 'x + 1' } }, 'data spec');
    expect(e.message).toContain("features.''");
    expect(e.message).toContain('a derived feature needs a name');
    const two = failure(
      params.pick({ num_leaves: true, name: true }),
      { num_leaves: 'x', name: 'toolong' },
      'f',
    );
    expect(two.message.split('; ')).toHaveLength(2);
  });
});
