import { describe, expect, it } from 'vitest';
import { detectPersonalData, findPersonalData, maskValue, passesLuhn } from './personal-data.js';
import { profileBatch } from './profile.js';

describe('personal-data detectors', () => {
  it.each([
    ['ana@example.com', 'email'],
    ['Contact: a.b+c@mail.co.uk.', 'email'],
    ['4111111111111111', 'card_number'],
    ['4111 1111 1111 1111', 'card_number'],
    ['5500-0000-0000-0004', 'card_number'],
    ['378282246310005', 'card_number'],
    ['6011111111111117', 'card_number'],
    ['paid with 3530111333300000 on Monday', 'card_number'],
    ['+1 415-555-2671', 'phone'],
    ['+442079460958', 'phone'],
    ['(415) 555-2671', 'phone'],
    ['415.555.2671', 'phone'],
    ['020 7946 0958', 'phone'],
    ['123-45-6789', 'national_id'],
    ['AB123456C', 'national_id'],
    ['AB 12 34 56 C', 'national_id'],
    ['192.168.1.20', 'ip_address'],
    ['client 10.0.0.1 connected', 'ip_address'],
    ['2001:db8::1', 'ip_address'],
    ['fe80:0:0:0:1ff:fe23:4567:890a', 'ip_address'],
  ])('finds %j as %s', (value, kind) => {
    expect(detectPersonalData(value)).toEqual([kind]);
  });

  it.each([
    // Luhn-invalid card-like numbers must not be flagged: the acceptance case of the issue.
    ['4111111111111112'],
    ['5500 0000 0000 0005'],
    // Luhn-valid, but no card network issues numbers starting so: an order id.
    ['1234567812345670'],
    ['ana@localhost'],
    ['@handle'],
    ['a@b'],
    ['20010115'],
    ['2001-01-15'],
    ['12345678'],
    ['3.14159'],
    ['1,234,567'],
    ['12:30:45'],
    ['000-12-3456'],
    ['666-12-3456'],
    ['900-12-3456'],
    ['123-00-4567'],
    ['QQ123456C'],
    ['BG123456A'],
    ['256.1.1.1'],
    ['1.2.3'],
    ['ORD'],
    ['LAX'],
    [''],
  ])('does not flag %j', (value) => {
    expect(detectPersonalData(value)).toEqual([]);
  });

  it('checks Luhn as the standard defines it', () => {
    expect(passesLuhn('79927398713')).toBe(true);
    expect(passesLuhn('79927398710')).toBe(false);
    expect(passesLuhn('1234567812345670')).toBe(true);
  });

  it('masks what it shows', () => {
    expect(maskValue('ana.lopez@example.com')).toBe('a•a.l•••z@e•••••e.c•m');
    expect(maskValue('4111 1111 1111 1111')).toBe('4••1 1••1 1••1 1••1');
  });
});

describe('findPersonalData over a stored profile', () => {
  it('counts matching rows per column and kind, exactly while every value is tracked', () => {
    const emails = ['ana@example.com', 'bo@example.org', 'not an email', null];
    const values = Array.from({ length: 400 }, (_, i) => emails[i % 4]!);
    const cards = Array.from({ length: 400 }, (_, i) =>
      i % 10 === 0 ? '4111111111111111' : '4111111111111112',
    );
    const airports = Array.from({ length: 400 }, (_, i) => ['ORD', 'LAX', 'SFO'][i % 3]!);
    const profile = profileBatch({
      nRows: 400,
      columns: [
        { kind: 'text', name: 'contact', values },
        { kind: 'text', name: 'card', values: cards },
        { kind: 'text', name: 'origin', values: airports },
        { kind: 'numeric', name: 'distance', values: Float64Array.from({ length: 400 }, (_, i) => i) },
      ],
    });
    const findings = findPersonalData(profile);
    expect(findings.map((f) => [f.column, f.kind, f.rows, f.examined, f.exact])).toEqual([
      ['contact', 'email', 200, 300, true],
      ['card', 'card_number', 40, 400, true],
    ]);
    expect(findings[0]!.share).toBeCloseTo(2 / 3, 12);
    expect(findings[0]!.examples).toEqual(['a•a@e•••••e.c•m', 'bo@e•••••e.o•g']);
  });

  it('says the figure is not exact when the profile folded rare values away', () => {
    const values = Array.from({ length: 300 }, (_, i) => `user${i}@example.com`);
    const profile = profileBatch(
      { nRows: 300, columns: [{ kind: 'text', name: 'email', values }] },
      { maxTrackedValues: 100 },
    );
    const [finding] = findPersonalData(profile);
    expect(finding).toMatchObject({ column: 'email', kind: 'email', exact: false });
    expect(finding!.rows).toBe(finding!.examined);
    expect(finding!.examined).toBeLessThan(300);
  });
});
