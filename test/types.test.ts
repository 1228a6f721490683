// The public types as an application sees them: compiled with the TypeScript compiler API
// against the built declarations (dist/lib/*.d.ts), resolved by package name like an import
// from node_modules. No server needed.
import { expect } from 'chai';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INDEX = path.join(ROOT, 'dist/lib/index.d.ts');
const CONSUMER = path.join(ROOT, 'test/fixtures/consumer.ts');

// The compiler is loaded by the first test that needs it, not with the other test files: it is
// big, and the memory tests that run before these should not carry it.
let ts: typeof import('typescript');
let NODENEXT: TS.CompilerOptions;
let BUNDLER: TS.CompilerOptions;

/** Compiles `file` (plus, if given, `text` as its content without writing it) and returns the messages. */
function compile(file: string, options: TS.CompilerOptions, text?: string): string[] {
  const host = ts.createCompilerHost(options);
  if (text !== undefined) {
    const { getSourceFile, fileExists, readFile } = host;
    host.getSourceFile = (name, lang, ...rest) => (path.resolve(name) === file ? ts.createSourceFile(name, text, lang) : getSourceFile.call(host, name, lang, ...rest));
    host.fileExists = (name) => path.resolve(name) === file || fileExists.call(host, name);
    host.readFile = (name) => (path.resolve(name) === file ? text : readFile.call(host, name));
  }
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : '';
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
}

describe('public types', function () {
  this.timeout(30_000);

  before(async () => {
    ts = (await import('typescript')).default;
    const app: TS.CompilerOptions = {
      strict: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      types: ['node'],
      typeRoots: [path.join(ROOT, 'node_modules/@types')],
    };
    NODENEXT = { ...app, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
    BUNDLER = { ...app, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler };
  });

  it('an application compiles under strict + exactOptionalPropertyTypes, nodenext and bundler resolution', () => {
    // The fixture's @ts-expect-error lines fail the compile if those mistakes stop being errors.
    expect(compile(CONSUMER, NODENEXT)).to.deep.equal([]);
    expect(compile(CONSUMER, BUNDLER)).to.deep.equal([]);
  });

  it('an array passed as one argument is an error that says to spread it', () => {
    const calls = ["loop.sendCommand(conn, 'DEL', keys)", "loop.sendCommand(conn, 'DEL', 'a', keys, 'b')", "loop.send(conn, ['DEL', keys])"];
    const text = `import { EventLoop } from 'redloop';\nconst loop = new EventLoop();\nconst conn = loop.connect({});\nconst keys: string[] = [];\n${calls.join(';\n')};\n`;
    const file = path.join(ROOT, 'test/fixtures/array-argument.ts'); // never written: served from memory
    const messages = compile(file, NODENEXT, text);
    expect(messages, messages.join('\n')).to.have.length(calls.length);
    calls.forEach((call, i) => {
      expect(messages[i], call).to.match(new RegExp(`^array-argument.ts:${5 + i}: `));
      expect(messages[i], call).to.include('an array is not one argument: spread it into separate arguments (...array)');
      expect(messages[i], call).not.to.include('Uint8Array');
    });
  });

  it('exports every type that a public signature uses', () => {
    const program = ts.createProgram([INDEX], NODENEXT);
    const checker = program.getTypeChecker();
    const resolve = (s: TS.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
    const exported = new Set(checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!).map(resolve));
    const libDir = path.dirname(INDEX) + path.sep;
    const isInternalKey = (key: TS.Expression): boolean => {
      const sym = checker.getSymbolAtLocation(key);
      return sym !== undefined && (resolve(sym).declarations ?? []).some((d) => /[\\/]base[\\/]internal\.(d\.)?ts$/.test(d.getSourceFile().fileName));
    };
    const missing = new Map<string, string>();
    const visit = (node: TS.Node, where: string): void => {
      const name = ts.isTypeReferenceNode(node) ? node.typeName : ts.isExpressionWithTypeArguments(node) ? node.expression : undefined;
      const target = name && checker.getSymbolAtLocation(name);
      const sym = target && resolve(target);
      const decl = sym?.declarations?.[0];
      if (sym && decl && path.resolve(decl.getSourceFile().fileName).startsWith(libDir)
        && !(sym.flags & ts.SymbolFlags.TypeParameter) && !exported.has(sym) && !missing.has(sym.name)) {
        missing.set(sym.name, where);
        for (const d of sym.declarations!) visit(d, sym.name); // and what it uses in turn
      }
      ts.forEachChild(node, (child) => visit(child, where));
    };
    // A class's surface: its public members, and those of the classes it extends. A base class
    // redloop does not export (SlotRouter under Cluster and ShardSet) need not be: its members are
    // checked as the subclass's own.
    const visitClass = (decl: TS.ClassDeclaration, name: string): void => {
      for (const h of decl.heritageClauses ?? []) {
        for (const t of h.types) {
          const base = checker.getSymbolAtLocation(t.expression);
          const baseDecl = base && resolve(base).declarations?.find(ts.isClassDeclaration);
          if (h.token === ts.SyntaxKind.ExtendsKeyword && baseDecl !== undefined && !exported.has(resolve(base!))
            && path.resolve(baseDecl.getSourceFile().fileName).startsWith(libDir)) {
            for (const a of t.typeArguments ?? []) visit(a, name);
            visitClass(baseDecl, name);
          } else {
            visit(t, name);
          }
        }
      }
      for (const member of decl.members) {
        const flags = ts.getCombinedModifierFlags(member);
        if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        if (member.name && ts.isPrivateIdentifier(member.name)) continue;
        // Members keyed by a symbol of lib/base/internal.ts (not exported): plumbing no user can reach.
        if (member.name && ts.isComputedPropertyName(member.name) && isInternalKey(member.name.expression)) continue;
        // Members documented @internal are the library's plumbing between its own layers.
        if (ts.getJSDocTags(member).some((t) => t.tagName.text === 'internal')) continue;
        visit(member, `${name}.${member.name?.getText() ?? 'constructor'}`);
      }
    };
    for (const sym of exported) {
      for (const decl of sym.declarations ?? []) {
        if (ts.isClassDeclaration(decl)) visitClass(decl, sym.name);
        else visit(decl, sym.name);
      }
    }
    expect([...missing].map(([type, where]) => `${type} (used by ${where})`)).to.deep.equal([]);
  });
});
