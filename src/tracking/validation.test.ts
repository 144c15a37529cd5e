import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { checkKey, isValidName, posixNormpath } from './validation.js';

const PYTHON = '/usr/bin/python3';

function accepted(key: string): boolean {
  try {
    checkKey('metric', key, 'key');
    return true;
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return false;
  }
}

describe("MLflow's key rule", () => {
  it("accepts exactly the characters Python's re \\w (plus / . - space :) accepts, over every code point Python's Unicode assigns", () => {
    // MLflow's check is re.match(r"^[/\w.\- :]*$", name) in Python. Python decides for every
    // code point its Unicode database assigns; Node's newer Unicode may know more letters,
    // which Python would refuse only because it does not know them yet.
    const out = execFileSync(
      PYTHON,
      [
        '-c',
        [
          'import json, re, unicodedata',
          'ok = re.compile(r"^[/\\w.\\- :]*$")',
          'def ranges(cs):',
          '    out = []',
          '    for c in cs:',
          '        if out and out[-1][1] == c - 1: out[-1][1] = c',
          '        else: out.append([c, c])',
          '    return out',
          'assigned = [c for c in range(0x110000) if not (0xD800 <= c < 0xE000) and unicodedata.category(chr(c)) != "Cn"]',
          'print(json.dumps({"assigned": ranges(assigned), "good": ranges([c for c in assigned if ok.match("a" + chr(c) + "b")])}))',
        ].join('\n'),
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    ).toString();
    const { assigned, good } = JSON.parse(out) as { assigned: number[][]; good: number[][] };
    const expand = (rs: number[][]) =>
      rs.flatMap(([lo, hi]) => Array.from({ length: hi! - lo! + 1 }, (_, i) => lo! + i));
    const pyAssigned = expand(assigned);
    const pythonAccepts = new Set(expand(good));
    expect(pyAssigned.length).toBeGreaterThan(100_000);
    expect(pythonAccepts.size).toBeGreaterThan(100_000);
    const disagreements: string[] = [];
    for (const c of pyAssigned) {
      const ch = String.fromCodePoint(c);
      // A lone '.' or '/' is refused as a path; test each character inside a name instead.
      const ours = isValidName(`a${ch}b`);
      if (ours !== pythonAccepts.has(c)) disagreements.push(c.toString(16));
    }
    expect(disagreements.slice(0, 20)).toEqual([]);
  });

  it('refuses what a file system would resolve to another name, as posixpath.normpath says', () => {
    const names = [
      'a/',
      '/a',
      'a//b',
      'a/./b',
      'a/../b',
      '..',
      '..x',
      '.',
      '',
      'a/.',
      './a',
      '//a',
      'a/b/..',
    ];
    const python = JSON.parse(
      execFileSync(
        PYTHON,
        [
          '-c',
          'import json, posixpath, sys\nprint(json.dumps([posixpath.normpath(n) for n in json.load(sys.stdin)]))',
        ],
        {
          input: JSON.stringify(names),
        },
      ).toString(),
    ) as string[];
    expect(names.map(posixNormpath)).toEqual(python);
    for (const name of names) expect(accepted(name), name).toBe(false);
    for (const name of ['a/b', 'a.b/c..d', 'x...', 'é/日本', 'a b:c'])
      expect(accepted(name), name).toBe(true);
  });

  it("keeps Python's `$` quirk: one trailing newline passes MLflow's regex, any other does not", () => {
    const names = ['loss\n', 'loss\n\n', 'lo\nss', 'loss'];
    const python = execFileSync(
      PYTHON,
      [
        '-c',
        'import json, re, sys\nok = re.compile(r"^[/\\w.\\- :]*$")\nprint(json.dumps([bool(ok.match(n)) for n in json.load(sys.stdin)]))',
      ],
      { input: JSON.stringify(names) },
    ).toString();
    expect(JSON.parse(python)).toEqual([true, false, false, true]);
    expect(names.map(accepted)).toEqual([true, false, false, true]);
  });

  it('names the field and the value as MLflow does, kiln detail after', () => {
    expect(() => checkKey('param', 'a;b', 'params[3].key')).toThrow(
      /^Invalid value "a;b" for parameter 'params\[3\]\.key' supplied: Names may only contain .*\(a param name\)$/,
    );
    expect(() => checkKey('metric', 123, 'key')).toThrow(/^Invalid value 123 for parameter 'key' supplied/);
    expect(() => checkKey('tag', undefined, 'tags[0].key')).toThrow(
      /^Missing value for required parameter 'tags\[0\]\.key'/,
    );
    expect(() => checkKey('metric', 'k'.repeat(251), 'key')).toThrow(/exceeded length limit of 250/);
  });
});
