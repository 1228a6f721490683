/**
 * The one thing redloop writes on its own: a process warning (stderr, unless node runs with
 * --no-warnings; observable with process.on('warning')) the first time a loop emits an
 * `error` event that nobody listens to. node:events would throw such an error and end the
 * process; a client that reconnects should not, but it must not stay silent either.
 */
const warned = new WeakSet<object>();

export function warnUnheardError(loop: object, err: Error): void {
  if (warned.has(loop)) return;
  warned.add(loop);
  process.emitWarning(
    `${err.name}: ${err.message} (an 'error' event with no listener on the EventLoop: add loop.on('error', ...) to handle them; later ones are not shown)`,
    { type: 'RedloopWarning', code: 'REDLOOP_UNHANDLED_ERROR' },
  );
}
