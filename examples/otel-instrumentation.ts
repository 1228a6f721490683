// redloop's diagnostics channels as OpenTelemetry spans and metrics (docs/tracing.md): what an
// instrumentation package would do, in one file. A span per command (its parent is whatever
// span is active where sendCommand was called), ended once with the final answer; a
// `db.client.operation.duration` histogram; a span per connection attempt; redirections as span
// events; and how many commands each socket write carried, which only a pipelining client can say.
//
// Attribute names are OpenTelemetry's database semantic conventions; `db.query.text` is the
// command as redloop publishes it, values already redacted (the loop's `traceArgs`).
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import {
  context, SpanKind, SpanStatusCode, type Attributes, type Meter, type Span, type Tracer,
} from '@opentelemetry/api';
import {
  CHANNELS, ReplyError,
  type CommandMessage, type ConnectMessage, type RedirectMessage, type WriteMessage,
} from '../lib/index.js';

/** The semantic conventions' advice for db.client.operation.duration, in seconds. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

export interface RedloopInstrumentation {
  /** Stops listening; spans still open end when their commands settle only if you listen again. */
  unsubscribe(): void;
}

interface Open {
  span: Span;
  started: number;
}

/** The `error.type` of a failure: the server's error code (WRONGTYPE, MOVED...) or the error's class name. */
function errorType(err: Error): string {
  return err instanceof ReplyError ? err.code : err.name;
}

function serverAttributes(m: { serverAddress: string | undefined; serverPort: number | undefined; db: number | undefined }): Attributes {
  const a: Attributes = {};
  if (m.serverAddress !== undefined) a['server.address'] = m.serverAddress;
  if (m.serverPort !== undefined) a['server.port'] = m.serverPort;
  if (m.db !== undefined) a['db.namespace'] = String(m.db);
  return a;
}

export function instrumentRedloop({ tracer, meter }: { tracer: Tracer; meter: Meter }): RedloopInstrumentation {
  const duration = meter.createHistogram('db.client.operation.duration', {
    description: 'Duration of database client operations',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const writeDepth = meter.createHistogram('redloop.client.write.commands', {
    description: 'Commands carried by one socket write (the pipeline depth)',
    unit: '{command}',
    advice: { explicitBucketBoundaries: [1, 2, 4, 16, 64, 256, 1024, 4096] },
  });
  const writeBytes = meter.createCounter('redloop.client.write.bytes', { description: 'Bytes written to Redis', unit: 'By' });

  const commands = new WeakMap<CommandMessage, Open>();
  const connects = new WeakMap<ConnectMessage, Span>();

  const ignore = (): void => {};
  const commandHandlers = {
    end: ignore, asyncStart: ignore, error: ignore, // the outcome is on the message at asyncEnd
    start(message: unknown) {
      const m = message as CommandMessage;
      const span = tracer.startSpan(m.command, {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'redis',
          'db.operation.name': m.command,
          'db.query.text': m.args.length === 0 ? m.command : `${m.command} ${m.args.join(' ')}`,
          'redloop.target': m.target,
          ...serverAttributes(m),
        },
      }, context.active());
      commands.set(m, { span, started: performance.now() });
    },
    asyncEnd(message: unknown) {
      const m = message as CommandMessage;
      const open = commands.get(m);
      if (open === undefined) return; // started before we listened
      commands.delete(m);
      const seconds = (performance.now() - open.started) / 1000;
      const { span } = open;
      const where = serverAttributes(m); // for a cluster, known once written: the node that answered
      span.setAttributes({ ...where, 'redloop.written': m.written, 'redloop.redirections': m.redirections });
      const metric: Attributes = { 'db.system.name': 'redis', 'db.operation.name': m.command, ...where };
      if (m.error !== undefined) {
        const type = errorType(m.error);
        span.recordException(m.error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: m.error.message });
        span.setAttribute('error.type', type);
        metric['error.type'] = type;
      }
      span.end();
      duration.record(seconds, metric);
    },
  };

  const connectHandlers = {
    end: ignore, asyncStart: ignore, error: ignore,
    start(message: unknown) {
      const m = message as ConnectMessage;
      connects.set(m, tracer.startSpan('redis connect', {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'redis', 'server.address': m.serverAddress, 'db.namespace': String(m.db),
          ...(m.serverPort !== undefined ? { 'server.port': m.serverPort } : {}),
          'redloop.connect.attempt': m.attempt, 'redloop.tls': m.tls,
        },
      }, context.active()));
    },
    asyncEnd(message: unknown) {
      const m = message as ConnectMessage;
      const span = connects.get(m);
      if (span === undefined) return;
      connects.delete(m);
      if (m.error !== undefined) {
        span.recordException(m.error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: m.error.message });
        span.setAttribute('error.type', errorType(m.error));
      }
      span.end();
    },
  };

  const onRedirect = (message: unknown) => {
    const m = message as RedirectMessage;
    const open = m.context === undefined ? undefined : commands.get(m.context);
    open?.span.addEvent('redis.redirect', {
      'redloop.redirect.kind': m.kind, 'redloop.redirect.slot': m.slot,
      ...(m.from !== undefined ? { 'redloop.redirect.from': m.from } : {}),
      ...(m.to !== undefined ? { 'redloop.redirect.to': m.to } : {}),
    });
  };

  const onWrite = (message: unknown) => {
    const m = message as WriteMessage;
    const where: Attributes = { 'server.address': m.serverAddress, ...(m.serverPort !== undefined ? { 'server.port': m.serverPort } : {}) };
    writeDepth.record(m.commands, where);
    writeBytes.add(m.bytes, where);
  };

  const commandChannel = diagnostics.tracingChannel(CHANNELS.command);
  const connectChannel = diagnostics.tracingChannel(CHANNELS.connect);
  commandChannel.subscribe(commandHandlers);
  connectChannel.subscribe(connectHandlers);
  diagnostics.subscribe(CHANNELS.redirect, onRedirect);
  diagnostics.subscribe(CHANNELS.write, onWrite);
  return {
    unsubscribe() {
      commandChannel.unsubscribe(commandHandlers);
      connectChannel.unsubscribe(connectHandlers);
      diagnostics.unsubscribe(CHANNELS.redirect, onRedirect);
      diagnostics.unsubscribe(CHANNELS.write, onWrite);
    },
  };
}
