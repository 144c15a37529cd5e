import { isIPv4, isIPv6 } from 'node:net';
import type { DatasetProfile } from './profile.js';

/**
 * Columns that look like personal data, found from a dataset's stored profile: every string
 * column's tracked values (all of them up to the profile's `maxTrackedValues`, else the most
 * frequent ones) are checked by value and weighted by their counts, so the figures are exact
 * row counts whenever the column's values were all tracked (`exact`). Numeric columns are not
 * checked: an identifier stored as a number has lost its format (and, past 2^53, its digits).
 *
 * The detectors favour precision over recall, because a flag asks a person to act:
 * - email: local@domain.tld anywhere in the value;
 * - card_number: 13–19 digits (single spaces or dashes allowed between them) that pass the
 *   Luhn check AND start with a card network's issuer prefix (Visa, Mastercard, Amex,
 *   Discover, JCB, Diners, UnionPay); a random 16-digit identifier passes Luhn one time in
 *   ten, and the prefix rule removes most of those;
 * - phone: a number with a leading '+' country code, or 8–15 digits in groups split by
 *   spaces, dots, dashes or a bracketed area code (a bare run of digits is not a phone);
 * - national_id: US social security numbers written ddd-dd-dddd (with the SSA's impossible
 *   areas and groups excluded) and UK national insurance numbers;
 * - ip_address: IPv4 dotted quads with every octet ≤ 255, and IPv6 addresses (a version
 *   string like 1.2.3.4 is indistinguishable from an address, and is flagged).
 */
export const PERSONAL_DATA_KINDS = ['email', 'card_number', 'phone', 'national_id', 'ip_address'] as const;
export type PersonalDataKind = (typeof PERSONAL_DATA_KINDS)[number];

export interface PersonalDataFinding {
  column: string;
  kind: PersonalDataKind;
  /** Rows whose value matched. */
  rows: number;
  /** Rows examined: the column's non-missing rows whose values the profile tracked. */
  examined: number;
  share: number;
  /** False when the profile folded rare values away, so some rows could not be examined. */
  exact: boolean;
  /** Up to three matching values, masked (the finding must not leak what it found). */
  examples: string[];
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;
const CARD_CANDIDATE = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g;
// A match must be the whole run of digit groups: '5500 0000 0000 0005' holds no phone.
const PHONE_INTERNATIONAL = /(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w]|[ .-]\d)/g;
const PHONE_GROUPED =
  /(?<![\w.-]|\d[ .-])(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w.-]|[ .-]\d)/g;
const US_SSN = /(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])/;
const UK_NINO =
  /(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])/;
const IPV4_CANDIDATE = /(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])/g;
const IPV6_CANDIDATE = /(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])/g;

/** The kinds of personal data `value` contains (empty when none). */
export function detectPersonalData(value: string): PersonalDataKind[] {
  const found: PersonalDataKind[] = [];
  if (EMAIL.test(value)) found.push('email');
  // A card number written in groups of digits also has a phone's shape; it is the card.
  if (hasCardNumber(value)) found.push('card_number');
  else if (hasPhone(value)) found.push('phone');
  if (US_SSN.test(value) || UK_NINO.test(value)) found.push('national_id');
  if (hasIpAddress(value)) found.push('ip_address');
  return found;
}

/** The Luhn checksum over a string of digits. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Whether the digits start with a card network's issuer prefix, at a length it issues. */
function hasIssuerPrefix(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === '4') return n === 13 || n === 16 || n === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15; // American Express
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19; // Discover
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38) return n >= 14 && n <= 19; // Diners
  if (p2 === 62) return n >= 16 && n <= 19; // UnionPay
  return false;
}

function hasCardNumber(value: string): boolean {
  for (const m of value.matchAll(CARD_CANDIDATE)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (hasIssuerPrefix(digits) && passesLuhn(digits)) return true;
  }
  return false;
}

function digitCount(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) n++;
  return n;
}

function hasPhone(value: string): boolean {
  for (const re of [PHONE_INTERNATIONAL, PHONE_GROUPED]) {
    for (const m of value.matchAll(re)) {
      const n = digitCount(m[0]);
      if (n >= 8 && n <= 15 && !isIPv4(m[0])) return true;
    }
  }
  return false;
}

function hasIpAddress(value: string): boolean {
  for (const m of value.matchAll(IPV4_CANDIDATE)) if (isIPv4(m[0])) return true;
  for (const m of value.matchAll(IPV6_CANDIDATE))
    if (m[0].includes('::') || m[0].split(':').length === 8) {
      if (isIPv6(m[0])) return true;
    }
  return false;
}

/** Keeps the first and last character of each run of letters and digits, masking the rest. */
export function maskValue(value: string): string {
  const clipped = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return clipped.replace(/[A-Za-z0-9]{3,}/g, (run) => `${run[0]}${'•'.repeat(run.length - 2)}${run.at(-1)}`);
}

/** Every (column, kind) whose values matched, from the profile alone; see the header. */
export function findPersonalData(profile: DatasetProfile): PersonalDataFinding[] {
  const findings: PersonalDataFinding[] = [];
  for (const column of profile.columns) {
    if (column.kind !== 'categorical') continue;
    const rows = new Map<PersonalDataKind, number>();
    const examples = new Map<PersonalDataKind, string[]>();
    let examined = 0;
    for (const [value, count] of Object.entries(column.counts)) {
      examined += count;
      for (const kind of detectPersonalData(value)) {
        rows.set(kind, (rows.get(kind) ?? 0) + count);
        const list = examples.get(kind) ?? [];
        if (list.length < 3) list.push(maskValue(value));
        examples.set(kind, list);
      }
    }
    for (const kind of PERSONAL_DATA_KINDS) {
      const n = rows.get(kind);
      if (!n) continue;
      findings.push({
        column: column.name,
        kind,
        rows: n,
        examined,
        share: examined > 0 ? n / examined : 0,
        exact: column.otherCount === 0,
        examples: examples.get(kind) ?? [],
      });
    }
  }
  return findings;
}
