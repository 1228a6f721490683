// A second process that keeps writing one key (INCR, one at a time, `gapMs` apart) while a test
// runs: a writer outside the EventLoop under test, as another client of the server would be.
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = `
const net = require('node:net');
const [port, key, gap] = process.argv.slice(1);
const cmd = Buffer.from('*2\\r\\n$4\\r\\nINCR\\r\\n$' + Buffer.byteLength(key) + '\\r\\n' + key + '\\r\\n');
let n = 0, stop = false, text = '';
const s = net.connect(Number(port), '127.0.0.1', () => s.write(cmd));
const next = () => { if (stop) { s.end(); process.stdout.write('done ' + n + '\\n', () => process.exit(0)); } else if (Number(gap) > 0) setTimeout(() => s.write(cmd), Number(gap)); else s.write(cmd); };
s.on('data', (d) => {
  text += d.toString('latin1');
  let i;
  while ((i = text.indexOf('\\r\\n')) !== -1) {
    if (text[0] !== ':') { process.stderr.write('unexpected reply ' + text.slice(0, i) + '\\n'); process.exit(1); }
    text = text.slice(i + 2);
    if (++n === 1) process.stdout.write('started\\n');
    next();
  }
});
s.on('error', (e) => { process.stderr.write(String(e) + '\\n'); process.exit(1); });
process.stdin.on('data', () => { stop = true; });
`;

export interface Hammer {
  /** Stops the writer and resolves with the number of INCRs the server applied. */
  stop(): Promise<number>;
}

/** Starts the writer; resolves once its first INCR was answered. */
export function startHammer(port: number, key: string, gapMs = 1): Promise<Hammer> {
  const child: ChildProcess = spawn(process.execPath, ['-e', SCRIPT, String(port), key, String(gapMs)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('exit', (code) => {
      const m = /done (\d+)/.exec(out);
      if (code === 0 && m !== null) resolve(Number(m[1]));
      else reject(new Error(`hammer exited with ${String(code)}: ${err}${out}`));
    });
  });
  exited.catch(() => {});
  return new Promise<Hammer>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('started')) resolve({ stop: () => { child.stdin!.write('stop\n'); return exited; } });
    });
    exited.then(() => reject(new Error('hammer ended before it started')), reject);
  });
}
