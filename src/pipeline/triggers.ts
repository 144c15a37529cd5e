import path from 'node:path';
import { KilnError } from '../errors.js';
import { EVENT_TYPES } from '../events/index.js';
import { loadPipeline } from './run.js';
import { applyParamOverrides } from './spec.js';
import type { SqlPipelineStore, TriggerEvent, TriggerRecord } from './sql-pipeline-store.js';

/**
 * Event triggers (`kiln pipeline trigger add|ls|rm`), fired by `kiln server`'s scheduler
 * (schedules.ts) from the events outbox (src/events): when an event of the trigger's type is
 * published and its fields match, the named pipeline runs with the event as a parameter. The
 * monitoring area publishes `alert.fired`; any published type can trigger.
 *
 * The protocol (migration 0015): each pass reads, per trigger, the events after its start that
 * no server has judged (an anti-join against `pipeline_trigger_firings`), and claims each by
 * inserting its firing row, matched or not; only the server whose insert went in starts the
 * run. So every matching event fires its trigger once, whatever the number of servers, and an
 * event judged once is never read again. Events are judged oldest first; a trigger never fires
 * for events published before it was added.
 */

const TRIGGER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MATCH_PATH = /^(subject|actor|payload(\.[A-Za-z0-9_-]+)+)$/;

export interface AddTriggerInput {
  name: string;
  event: string;
  /** `subject`, `actor` or `payload.a.b` → value (`*` matches any run of characters). */
  match?: Record<string, string>;
  spec: string;
  params?: Record<string, string>;
  /** The pipeline parameter that receives the event (default `event`); the spec must declare it. */
  eventParam?: string;
  createdBy: string;
}

/** Validates everything a trigger names (event type, match fields, spec, parameters) before storing it. */
export async function addTrigger(store: SqlPipelineStore, input: AddTriggerInput): Promise<TriggerRecord> {
  if (!TRIGGER_NAME.test(input.name))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `trigger name '${input.name.slice(0, 80)}': use letters, digits, '.', '_' and '-' (at most 100, starting with a letter or digit)`,
    );
  if (!(EVENT_TYPES as readonly string[]).includes(input.event))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--event '${input.event.slice(0, 80)}': not an event type (one of ${EVENT_TYPES.join(', ')})`,
    );
  for (const [k, v] of Object.entries(input.match ?? {})) {
    if (!MATCH_PATH.test(k))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `--match ${k.slice(0, 80)}: match a field of the event: subject, actor, or payload.NAME[.NAME…]`,
      );
    if (v.length > 1000)
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `--match ${k}: the value is longer than 1000 characters`,
      );
  }
  const eventParam = input.eventParam ?? 'event';
  if (!PARAM_NAME.test(eventParam))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--event-param '${eventParam.slice(0, 80)}' is not a parameter name`,
    );
  const loaded = loadPipeline(input.spec);
  applyParamOverrides(loaded.spec, input.params ?? {});
  if (!(eventParam in loaded.spec.params))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${input.spec}: the pipeline declares no parameter '${eventParam}' to receive the event (add it under params:, e.g. ${eventParam}: {})`,
    );
  if (input.params && eventParam in input.params)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--param ${eventParam}: that parameter receives the event`,
    );
  const record: TriggerRecord = {
    name: input.name,
    eventType: input.event,
    match: input.match ?? {},
    specPath: path.resolve(input.spec),
    params: input.params ?? {},
    eventParam,
    enabled: true,
    sinceEventId: await store.latestEventId(),
    createdBy: input.createdBy,
    creationTime: Date.now(),
  };
  await store.putTrigger(record);
  return record;
}

/** Whether every field the trigger names has the value (or pattern) it asks for. */
export function triggerMatches(match: Record<string, string>, event: TriggerEvent): boolean {
  return Object.entries(match).every(([field, pattern]) => {
    let v: unknown = event;
    for (const part of field.split('.')) {
      if (v === null || typeof v !== 'object') return false;
      v = (v as Record<string, unknown>)[part];
    }
    if (v === undefined) return false;
    return globMatch(pattern, typeof v === 'string' ? v : JSON.stringify(v));
  });
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('[\\s\\S]*')}$`);
  return re.test(text);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
