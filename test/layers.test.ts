// The layers of lib/ (see CONTRIBUTING.md): data goes down on send and up on reply, and a file may
// import only from its own layer or the layers under it. An import that runs up the layers fails here.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));

/** Bottom first. core/ (the EventLoop facade, futures) and features/ sit side by side on top. */
const RANK: Record<string, number> = {
  base: 0, protocol: 1, connection: 2, cache: 3, routing: 4, features: 5, core: 5, cli: 6, 'index.ts': 7,
};

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [full] : [];
  });
}

function layerOf(file: string): string {
  return path.relative(LIB, file).split(path.sep)[0]!;
}

describe('layers of lib/', () => {
  const files = sources(LIB);

  it('every file sits in a known layer', () => {
    const unknown = files.map(layerOf).filter((layer) => RANK[layer] === undefined);
    expect(unknown, 'files outside the layers').to.deep.equal([]);
  });

  it('no import runs up the layers', () => {
    const upward: string[] = [];
    for (const file of files) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = path.resolve(path.dirname(file), m[1]!);
        const from = layerOf(file);
        const to = layerOf(target);
        if (RANK[to]! > RANK[from]!) upward.push(`${path.relative(LIB, file)} imports ${path.relative(LIB, target)}`);
      }
    }
    expect(upward).to.deep.equal([]);
  });
});
