#!/usr/bin/env node
// The redloop command line: `redloop <subcommand> [options]`.
//
// Only what works from an installed package is listed here: a subcommand's module and
// dependencies must be in the tarball ("files" and "dependencies" in package.json). The
// benchmark suite needs the repository (ioredis, node-redis, the test harness), so it is
// `npm run bench` there, not a subcommand. test/package.test.ts installs the packed tarball
// and runs every subcommand listed here.
//
// To add a subcommand: add an entry to SUBCOMMANDS whose run() imports its module (loaded
// only when asked for) and returns the exit status.

interface Subcommand {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  pipe: {
    summary: 'mass insertion: read commands from stdin (RESP or text) and send them at protocol speed (see redloop pipe --help)',
    run: async (argv) => (await import('../lib/cli/pipe.js')).runPipe(argv),
  },
};

function usage(): string {
  const names = Object.keys(SUBCOMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  return [
    'usage: redloop <command> [options]',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${SUBCOMMANDS[n]!.summary}`),
    '',
    'redloop <command> --help shows the options of one command.',
    '',
  ].join('\n');
}

async function cli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const sub = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
  if (!sub) {
    // The README's bench is `npm run bench` in a clone; someone trying `npx redloop bench` learns where it is.
    const hint = name === 'bench' ? 'the benchmark suite runs from a clone of the repository (npm run bench): it needs the clients it compares against\n' : '';
    process.stderr.write(`redloop: unknown command "${name}"\n${hint}\n${usage()}`);
    return 2;
  }
  return sub.run(rest);
}

cli(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`redloop: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
