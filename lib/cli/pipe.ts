/**
 * `redloop pipe`: mass insertion from stdin (or a file), like `redis-cli --pipe`, through
 * loop.massInsert(). RESP input is framed and written as it came; text input is one command
 * per line with redis-cli's quoting. Every reply is read and counted (unless --replies off).
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { EventLoop } from '../core/eventloop.js';
import { MassInsertError, type MassInsertProgress, type MassInsertReport, type MassInsertSource } from '../features/massinsert/massinsert.js';
import { MAX_TIMER_MS, parseRedisUrl } from '../base/options.js';
import { MalformedInputError, UsageError } from '../base/errors.js';
import { TextCommandReader } from './textformat.js';
import type { CommandTarget } from '../connection/target.js';

export const PIPE_USAGE = `usage: redloop pipe [options] [file]

Sends every command of the input to Redis as fast as the server takes them, reads every
reply, and ends with "errors: N, replies: M". Reads stdin when no file (or "-") is given.

options:
  --url <url>          redis://[user:pass@]host:port/db, rediss://... or unix:///path
                       (default: $REDIS_URL, else redis://127.0.0.1:6379)
  --cluster <url>      a Redis Cluster, by the URL of any of its nodes: each command goes to
                       the master that owns its key's slot, all masters loaded in parallel;
                       MOVED/ASK during the load are followed (and counted on stderr)
  --shards <url,...>   a client-side shard set of standalone servers (slots cut among them
                       as redis-cli --cluster create would, in the order given)
                       With --cluster or --shards, a command without a key (PING, FLUSHALL...)
                       is a failed command: it has no node of its own.
  --format resp|text   resp (default): RESP arrays of bulk strings, what redis-cli --pipe reads;
                       text: one command per line, redis-cli quoting ("..." with \\n \\r \\t \\" \\\\ \\xHH,
                       '...'), blank lines skipped
  --timeout <seconds>  give up when no reply arrives for this long while replies are owed
                       (default 30; 0 waits forever)
  --replies on|off     off: CLIENT REPLY OFF, no replies at all; faster, but the server's
                       errors are NOT reported (only input errors are)
  --show-errors <n>    how many failed commands to print (default 10)
  -h, --help           this text

A progress bar is drawn on stderr when it is a terminal.
exit status: 0 all commands succeeded; 1 some commands failed (error replies);
             2 bad usage, malformed input, or the run could not finish (connection, timeout).
`;

interface PipeArgs {
  url: string;
  /** --cluster: the seed URL. */
  cluster: string | undefined;
  /** --shards: the servers' URLs, in slot order. */
  shards: string[] | undefined;
  format: 'resp' | 'text';
  timeoutMs: number;
  replies: 'on' | 'off';
  showErrors: number;
  file: string | undefined;
  help: boolean;
}

export { UsageError };

export function parsePipeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): PipeArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        cluster: { type: 'string' },
        shards: { type: 'string' },
        format: { type: 'string' },
        timeout: { type: 'string' },
        replies: { type: 'string' },
        'show-errors': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const format = v.format ?? 'resp';
  if (format !== 'resp' && format !== 'text') throw new UsageError(`--format must be resp or text, got "${format}"`);
  const replies = v.replies ?? 'on';
  if (replies !== 'on' && replies !== 'off') throw new UsageError(`--replies must be on or off, got "${replies}"`);
  const timeout = Number(v.timeout ?? '30');
  if (!(timeout >= 0) || !(timeout * 1000 <= MAX_TIMER_MS)) {
    throw new UsageError(`--timeout must be a number of seconds, at most ${Math.floor(MAX_TIMER_MS / 1000)} (0 = forever), got "${v.timeout}"`);
  }
  const showErrors = Number(v['show-errors'] ?? '10');
  if (!Number.isInteger(showErrors) || showErrors < 0) throw new UsageError(`--show-errors must be a non-negative integer, got "${v['show-errors']}"`);
  const targets = [v.url, v.cluster, v.shards].filter((t) => t !== undefined).length;
  if (targets > 1) throw new UsageError('give one of --url, --cluster and --shards');
  if (v.cluster !== undefined && v.cluster.trim() === '') throw new UsageError('--cluster needs the URL of a node of the cluster');
  const shards = v.shards?.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (v.shards !== undefined && shards!.length === 0) throw new UsageError('--shards needs a comma-separated list of URLs, e.g. redis://a:6379,redis://b:6379');
  if (parsed.positionals.length > 1) throw new UsageError(`one input file at most, got ${parsed.positionals.length}`);
  const file = parsed.positionals[0];
  return {
    url: v.url ?? (env.REDIS_URL || 'redis://127.0.0.1:6379'),
    cluster: v.cluster,
    shards,
    format,
    timeoutMs: timeout * 1000,
    replies,
    showErrors,
    file: file === '-' ? undefined : file,
    help: v.help === true,
  };
}

/** The input as a byte stream, and its size when it is a regular file (for the progress bar). */
function openInput(file: string | undefined): { stream: NodeJS.ReadableStream; size: number | undefined } {
  const highWaterMark = 1 << 20;
  if (file !== undefined) {
    const size = fs.statSync(file).size;
    return { stream: fs.createReadStream(file, { highWaterMark }), size };
  }
  let stat: fs.Stats | undefined;
  try {
    stat = fs.fstatSync(0);
  } catch { /* no stdin */ }
  if (stat?.isFile()) {
    // A redirected file: large reads, and a known size. Pipes and terminals use process.stdin.
    return { stream: fs.createReadStream('', { fd: 0, highWaterMark, autoClose: false }), size: stat.size };
  }
  return { stream: process.stdin, size: undefined };
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

interface ProgressView {
  update(p: MassInsertProgress): void;
  stop(): void;
}

function progressBar(size: number | undefined, stream: NodeJS.WriteStream): ProgressView {
  const known = size !== undefined && size > 0;
  const bar = new cliProgress.SingleBar({
    stream,
    format: known
      ? '{bar} {percentage}% | {sent} sent | {replies} replies | {errors} errors | {rate} cmd/s'
      : '{sent} sent | {replies} replies | {errors} errors | {rate} cmd/s',
    hideCursor: true,
    clearOnComplete: true,
    fps: 10,
  }, cliProgress.Presets.shades_classic);
  bar.start(known ? size : 1, 0, { sent: '0', replies: '0', errors: '0', rate: '0' });
  return {
    update(p) {
      const rate = p.elapsedMs > 0 ? Math.round(p.replies / (p.elapsedMs / 1000)) : 0;
      const payload = { sent: formatCount(p.sent), replies: formatCount(p.replies), errors: formatCount(p.errors), rate: formatCount(rate) };
      bar.update(known ? Math.min(p.bytesIn ?? 0, size) : 0, payload);
    },
    stop() {
      bar.stop();
    },
  };
}

/** Runs `redloop pipe`; resolves to the exit status. */
export async function runPipe(argv: string[]): Promise<number> {
  const out = process.stdout;
  const err = process.stderr;
  let args: PipeArgs;
  try {
    args = parsePipeArgs(argv);
  } catch (e) {
    err.write(`redloop pipe: ${(e as Error).message}\n\n${PIPE_USAGE}`);
    return 2;
  }
  if (args.help) {
    out.write(PIPE_USAGE);
    return 0;
  }

  let input;
  try {
    input = openInput(args.file);
  } catch (e) {
    err.write(`redloop pipe: cannot read ${args.file}: ${(e as Error).message}\n`);
    return 2;
  }
  if (args.file === undefined && process.stdin.isTTY) {
    err.write(`redloop pipe: reading ${args.format === 'text' ? 'commands, one per line,' : 'RESP'} from the terminal; end with Ctrl-D\n`);
  }

  const loop = new EventLoop();
  let connectionError: Error | undefined;
  loop.on('error', (e) => { connectionError ??= e; });
  let target: CommandTarget;
  const connectTimeout = args.timeoutMs > 0 ? args.timeoutMs : 10_000;
  try {
    // A command-line run fails fast: no reconnect, and a connect timeout from --timeout.
    if (args.cluster !== undefined) {
      target = loop.cluster([args.cluster], { connectTimeout, clusterDownTimeout: connectTimeout });
    } else if (args.shards !== undefined) {
      const shards = loop.shards(args.shards.map((u) => ({ ...parseRedisUrl(u), reconnect: false, connectTimeout })));
      // Every shard must answer before anything is sent: a load half applied to a set is worse than none.
      await Promise.all(shards.connections.map((c) => loop.sendCommand(c, 'PING')));
      target = shards;
    } else {
      target = loop.connect({ ...parseRedisUrl(args.url), reconnect: false, connectTimeout });
    }
  } catch (e) {
    err.write(`redloop pipe: ${(e as Error).message}\n`);
    loop.disconnect();
    return 2;
  }

  const text = args.format === 'text' ? new TextCommandReader(input.stream as AsyncIterable<Buffer>) : undefined;
  const source: MassInsertSource = text ?? input.stream;
  const bar = err.isTTY ? progressBar(input.size, err) : undefined;
  let report: MassInsertReport;
  let failure: Error | undefined;
  try {
    report = await loop.massInsert(target, source, {
      input: text !== undefined ? 'commands' : 'resp',
      replies: args.replies,
      timeout: args.timeoutMs,
      maxErrors: args.showErrors,
      onProgress: bar === undefined ? undefined : (p) => {
        if (text !== undefined) p.bytesIn = text.bytesIn;
        bar.update(p);
      },
      progressInterval: 100,
    });
  } catch (e) {
    if (!(e instanceof MassInsertError)) throw e;
    report = e.report;
    failure = e.cause as Error;
  } finally {
    bar?.stop();
  }
  if (failure === undefined) await loop.close();
  else loop.disconnect();

  const where = (index: number) => (text !== undefined ? `line ${text.lineOf(index)}` : `command #${index + 1}`);
  for (const f of report.errors.first) err.write(`${where(f.index)}: ${f.message}\n`);
  if (report.errors.count > report.errors.first.length) {
    err.write(`... and ${formatCount(report.errors.count - report.errors.first.length)} more error(s)\n`);
  }
  if (failure !== undefined) {
    if (failure instanceof MalformedInputError) {
      err.write(`redloop pipe: malformed input: ${failure.message}; nothing after it was sent\n`);
    } else {
      const detail = connectionError !== undefined && !failure.message.includes(connectionError.message) ? ` (${connectionError.message})` : '';
      err.write(`redloop pipe: ${failure.message}${detail}\n`);
    }
  }
  const r = report.redirections;
  if (r !== undefined && r.moved + r.ask + r.tryAgain > 0) {
    err.write(`redloop pipe: redirections followed: ${r.moved} MOVED, ${r.ask} ASK, ${r.tryAgain} TRYAGAIN\n`);
  }
  if (report.replyMode === 'off') {
    err.write('redloop pipe: --replies off: the server sent no replies, so its errors are not counted\n');
  }
  if (err.isTTY) {
    const seconds = report.elapsedMs / 1000;
    err.write(`${formatCount(report.sent)} commands in ${seconds.toFixed(2)} s (${formatCount(Math.round(report.sent / Math.max(seconds, 1e-9)))}/s)\n`);
  }
  out.write(`errors: ${report.errors.count}, replies: ${report.replies}\n`);
  if (failure !== undefined) return 2;
  return report.errors.count > 0 ? 1 : 0;
}
