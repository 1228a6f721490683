// The docs against the code: every connection option in docs/options.md with its default, and
// every relative link of README.md and docs/*.md pointing to a file (and heading) that exists.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { DEFAULT_RECONNECT, resolveOptions } from '../lib/base/options.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** The rows of the markdown tables of `text`, by the first cell's code name (`name`). */
function tableRows(text: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, '').trim());
    for (const m of cells[0]!.matchAll(/`([\w.]+)`/g)) rows.set(m[1]!, cells);
  }
  return rows;
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[`*_~]/g, '').replace(/[^\w\- ]/g, '').replace(/ /g, '-');
}

function anchorsOf(text: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*)/.exec(line);
    if (m) out.add(slug(m[1]!));
  }
  return out;
}

describe('docs', () => {
  it('docs/options.md lists every connection option with its default', () => {
    const rows = tableRows(read('docs/options.md'));
    const defaults = resolveOptions({}) as unknown as Record<string, unknown>;
    const shown = (v: unknown) => (v === 4 * 1024 * 1024 ? '4 MiB' : v === undefined ? '' : String(v));
    for (const [name, value] of Object.entries(defaults)) {
      if (name === 'reconnect') continue;
      const row = rows.get(name);
      expect(row, `docs/options.md has no row for ${name}`).to.be.an('array');
      if (value !== undefined) expect(row![1], `the default of ${name}`).to.include(shown(value));
    }
    for (const [name, value] of Object.entries(DEFAULT_RECONNECT)) {
      const row = rows.get(`reconnect.${name}`);
      expect(row, `docs/options.md has no row for reconnect.${name}`).to.be.an('array');
      expect(row![1], `the default of reconnect.${name}`).to.include(String(value));
    }
    expect(rows.get('url'), 'url').to.be.an('array');
  });

  it('every relative link of README.md, CONTRIBUTING.md and docs/*.md resolves, anchors included', () => {
    const files = ['README.md', 'CONTRIBUTING.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const broken: string[] = [];
    for (const file of files) {
      let fenced = false;
      for (const line of read(file).split('\n')) {
        if (line.startsWith('```')) fenced = !fenced;
        if (fenced) continue;
        // Code spans are not links (docs/resp3.md writes conn[kAddPushListener](fn)).
        for (const [, target] of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
          if (/^[a-z]+:/.test(target!)) continue;
          const [file2, anchor] = target!.split('#') as [string, string | undefined];
          const resolved = file2 === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), file2));
          if (!fs.existsSync(path.join(ROOT, resolved))) broken.push(`${file}: ${target} (no such file)`);
          else if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(read(resolved)).has(anchor)) broken.push(`${file}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).to.deep.equal([]);
  });
});
