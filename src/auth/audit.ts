import { createHash } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { KilnError } from '../errors.js';
import type { Database } from '../store/index.js';

/**
 * The audit log: an append-only hash chain of every governed mutation.
 *
 * Protocol (every writer keeps it):
 * - `appendAudit` is called inside the transaction of the change it records, so the change
 *   and its entry commit together or not at all.
 * - It first bumps the single `audit_head` row (seq + 1). That UPDATE takes the row's write
 *   lock (Postgres) or runs under SQLite's write lock, so concurrent appends queue and the
 *   chain never forks; the entry then takes the new seq and the head's hash as `prev_hash`.
 * - An entry's hash is SHA-256 over its previous hash and the canonical JSON of its content
 *   (seq, time, actor, action, target, detail). Nothing ever updates or deletes an entry.
 *
 * `verifyAuditChain` re-walks the chain from seq 1 and names the first entry that breaks it:
 * an edited entry no longer matches its hash, a deleted one leaves a gap in seq (or a head
 * past the end), an inserted one breaks the next entry's prev_hash or lies past the head,
 * swapped ones break both. A rewrite of the whole chain by someone with write access to the
 * database is caught only against a head hash kept elsewhere (`expectHead`, from an earlier
 * `kiln audit verify` or export).
 */
export interface AuditEvent {
  actor: string;
  /** `<area>.<verb>`: `model.create`, `version.create`, `alias.set`, `promotion.refused`, … */
  action: string;
  /** What it acted on: `models:/fraud`, `models:/fraud/3`, `models:/fraud@champion`. */
  target: string;
  /** Before/after ids and values, the gate's rules, the reason. */
  detail?: Record<string, unknown>;
}

export interface AuditEntry {
  seq: number;
  time: number;
  actor: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export type AuditVerification =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; seq: number; problem: string };

export const GENESIS_HASH = '0'.repeat(64);

type Db = Kysely<Database> | Transaction<Database>;

export async function appendAudit(trx: Transaction<Database>, event: AuditEvent): Promise<AuditEntry> {
  const head = await trx
    .updateTable('audit_head')
    .set((eb) => ({ seq: eb('seq', '+', 1) }))
    .where('id', '=', 1)
    .returning(['seq', 'hash'])
    .executeTakeFirst();
  if (!head) throw new KilnError('INTERNAL_ERROR', 'audit log head is missing (migration 0006 not applied?)');
  const entry = sealEntry({
    seq: Number(head.seq),
    time: Date.now(),
    actor: event.actor,
    action: event.action,
    target: event.target,
    detail: event.detail ?? {},
    prev_hash: head.hash,
  });
  await trx
    .insertInto('audit_log')
    .values({
      seq: entry.seq,
      time: entry.time,
      actor: entry.actor,
      action: entry.action,
      target: entry.target,
      detail_json: canonicalJson(entry.detail),
      prev_hash: entry.prev_hash,
      hash: entry.hash,
    })
    .execute();
  await trx.updateTable('audit_head').set({ hash: entry.hash }).where('id', '=', 1).execute();
  return entry;
}

function sealEntry(entry: Omit<AuditEntry, 'hash'>): AuditEntry {
  return { ...entry, hash: entryHash(entry, canonicalJson(entry.detail)) };
}

function entryHash(entry: Omit<AuditEntry, 'hash' | 'detail'>, detailJson: string): string {
  const content = canonicalJson([entry.seq, entry.time, entry.actor, entry.action, entry.target]);
  return createHash('sha256').update(`${entry.prev_hash}\n${content}\n${detailJson}`).digest('hex');
}

/** JSON with object keys sorted at every level, so the same content always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

const PAGE = 1000;

/** Entries in seq order, a page at a time (the log grows without bound). */
export async function* readAuditLog(
  db: Db,
  filter: { target?: string; sinceSeq?: number } = {},
): AsyncGenerator<AuditEntry> {
  let after = (filter.sinceSeq ?? 1) - 1;
  for (;;) {
    let query = db.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq').limit(PAGE);
    if (filter.target !== undefined) {
      const t = filter.target;
      query = query.where((eb) =>
        eb.or([eb('target', '=', t), eb('target', 'like', `${t}/%`), eb('target', 'like', `${t}@%`)]),
      );
    }
    const rows = await query.execute();
    for (const row of rows) {
      yield {
        seq: Number(row.seq),
        time: Number(row.time),
        actor: row.actor,
        action: row.action,
        target: row.target,
        detail: parseDetail(row.detail_json),
        prev_hash: row.prev_hash,
        hash: row.hash,
      };
    }
    if (rows.length < PAGE) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

/** One page of the audit log, newest first, for a person reading it (the web UI's Audit page). */
export interface AuditSearch {
  /** Exact actor. */
  actor?: string;
  /** An action (`model.promote`) or a prefix ending in `.` (`model.`). */
  action?: string;
  /** A target and everything under it, as `readAuditLog` matches it. */
  target?: string;
  /** Entries with a smaller seq only: the `next_before_seq` of the previous page. */
  beforeSeq?: number;
  limit?: number;
}

export async function searchAuditLog(
  db: Db,
  search: AuditSearch,
): Promise<{ entries: AuditEntry[]; next_before_seq?: number }> {
  const limit = Math.max(1, Math.min(1000, search.limit ?? 100));
  let query = db
    .selectFrom('audit_log')
    .selectAll()
    .orderBy('seq', 'desc')
    .limit(limit + 1);
  if (search.beforeSeq !== undefined) query = query.where('seq', '<', search.beforeSeq);
  if (search.actor !== undefined) query = query.where('actor', '=', search.actor);
  if (search.action !== undefined) {
    const a = search.action;
    // LIKE's wildcards in a user's prefix match themselves only.
    query = a.endsWith('.')
      ? query.where(sql<boolean>`substr(action, 1, ${a.length}) = ${a}`)
      : query.where('action', '=', a);
  }
  if (search.target !== undefined) {
    const t = search.target;
    query = query.where((eb) =>
      eb.or([eb('target', '=', t), eb(sql`substr(target, 1, ${t.length + 1})`, 'in', [`${t}/`, `${t}@`])]),
    );
  }
  const rows = await query.execute();
  const entries = rows.slice(0, limit).map((row) => ({
    seq: Number(row.seq),
    time: Number(row.time),
    actor: row.actor,
    action: row.action,
    target: row.target,
    detail: parseDetail(row.detail_json),
    prev_hash: row.prev_hash,
    hash: row.hash,
  }));
  return rows.length > limit ? { entries, next_before_seq: entries[entries.length - 1]!.seq } : { entries };
}

function parseDetail(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { unparseable: json };
  }
}

export async function verifyAuditChain(
  db: Db,
  options: { expectHead?: string } = {},
): Promise<AuditVerification> {
  const head = await db
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirst();
  const headSeq = Number(head?.seq ?? 0);
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let count = 0;
  let sawExpected = options.expectHead === undefined || options.expectHead === GENESIS_HASH;
  const bad = (seq: number, problem: string): AuditVerification => ({
    ok: false,
    entries: count,
    seq,
    problem,
  });
  let after = 0;
  for (;;) {
    const rows = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(PAGE)
      .execute();
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq > headSeq) {
        return bad(seq, `entry ${seq} lies past the chain head (${headSeq}): inserted outside the audit log`);
      }
      if (seq !== expectedSeq) {
        return bad(expectedSeq, `entry ${expectedSeq} is missing (next entry is ${seq}): deleted`);
      }
      if (row.prev_hash !== prev) {
        return bad(
          seq,
          `entry ${seq} does not follow entry ${seq - 1} (prev_hash differs): inserted, reordered or the previous entry was replaced`,
        );
      }
      const recomputed = entryHash(
        {
          seq,
          time: Number(row.time),
          actor: row.actor,
          action: row.action,
          target: row.target,
          prev_hash: row.prev_hash,
        },
        canonicalJson(parseDetail(row.detail_json)),
      );
      if (recomputed !== row.hash) {
        return bad(seq, `entry ${seq} (${row.action} ${row.target}) does not match its hash: edited`);
      }
      prev = row.hash;
      if (row.hash === options.expectHead) sawExpected = true;
      expectedSeq++;
      count++;
    }
    if (rows.length < PAGE) break;
    after = Number(rows[rows.length - 1]!.seq);
  }
  if (count !== headSeq) {
    return bad(
      expectedSeq,
      `entry ${expectedSeq} is missing (chain head says ${headSeq} entries, found ${count}): deleted`,
    );
  }
  if (head && head.hash !== prev) {
    return bad(headSeq, `the chain head's hash does not match entry ${headSeq}: the log was rewritten`);
  }
  if (!sawExpected) {
    return bad(
      headSeq,
      `no entry has the expected hash ${options.expectHead!.slice(0, 12)}…: the chain was rewritten or rolled back`,
    );
  }
  return { ok: true, entries: count, head: prev };
}
