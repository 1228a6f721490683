// redloop's diagnostics channels turned into OpenTelemetry spans and metrics (docs/tracing.md).
// The library depends on nothing for this: otel-instrumentation.ts subscribes to the channels.
// Here the spans and metrics go to memory and are printed; in an application the same
// instrumentRedloop() call sits next to your OTLP exporter.
//   npm run example -- opentelemetry            (a throwaway redis-server)
//   REDIS_URLS=redis://host:6379 npm run example -- opentelemetry
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { DataPointType, MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics';
import { EventLoop, Future } from '../lib/index.js';
import { instrumentRedloop } from './otel-instrumentation.js';
import { withServers } from './servers.js';

/** Metrics read on demand (an application would use a PeriodicExportingMetricReader). */
class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
trace.setGlobalTracerProvider(tracerProvider);
const reader = new OnDemandReader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const tracer = trace.getTracer('redloop-example');
const instrumentation = instrumentRedloop({ tracer, meter: metrics.getMeter('redloop-example') });

await withServers(1, async ([url]) => {
  const loop = new EventLoop(); // traceArgs: 'redacted' (the default): keys kept, values '?'
  const conn = loop.connect(url!);

  // One request of an application: its Redis commands are children of its span.
  await tracer.startActiveSpan('GET /checkout', async (request) => {
    // Sent in one tick: one socket write, one span each, each with its own duration.
    const window = [
      loop.sendCommand(conn, 'HSET', 'cart:42', 'sku-1', '2', 'sku-7', '1'),
      loop.sendCommand(conn, 'HGETALL', 'cart:42'),
      loop.sendCommand(conn, 'SET', 'session:42', 'secret-token', 'EX', 60),
      loop.sendCommand(conn, 'INCR', 'orders:count'),
      loop.sendCommand(conn, 'MGET', 'session:42', 'orders:count'),
    ];
    await Future.all(window);
    // An error reply: its span is marked as an error with the server's code.
    await loop.sendCommand(conn, 'INCR', 'session:42').catch((err: Error) => console.log(`expected failure: ${err.message}`));
    request.end();
  });
  await loop.close();
});
instrumentation.unsubscribe();

console.log('\nspans (name, ms, parent, db.query.text, status):');
const finished = spans.getFinishedSpans();
const names = new Map(finished.map((s) => [s.spanContext().spanId, s.name]));
for (const s of finished) {
  const ms = (s.duration[0] * 1e3 + s.duration[1] / 1e6).toFixed(3);
  const parent = s.parentSpanContext === undefined ? '-' : names.get(s.parentSpanContext.spanId) ?? '?';
  const status = s.status.code === 2 ? `ERROR ${String(s.attributes['error.type'])}` : 'ok';
  const server = s.attributes['server.address'] === undefined ? '' : ` @ ${String(s.attributes['server.address'])}:${String(s.attributes['server.port'])}`;
  console.log(`  ${s.name.padEnd(14)} ${ms.padStart(8)}  ${parent.padEnd(14)} ${String(s.attributes['db.query.text'] ?? '').padEnd(36)} ${status}${server}`);
}

const { resourceMetrics } = await reader.collect();
console.log('\nmetrics:');
for (const scope of resourceMetrics.scopeMetrics) {
  for (const metric of scope.metrics) {
    if (metric.dataPointType !== DataPointType.HISTOGRAM) {
      for (const p of metric.dataPoints) console.log(`  ${metric.descriptor.name} = ${String(p.value)}`);
      continue;
    }
    for (const p of metric.dataPoints) {
      const h = p.value as Histogram;
      const what = String(p.attributes['db.operation.name'] ?? p.attributes['server.address'] ?? '');
      const error = p.attributes['error.type'] === undefined ? '' : ` error.type=${String(p.attributes['error.type'])}`;
      console.log(`  ${metric.descriptor.name}{${what}${error}} count=${h.count} sum=${(h.sum ?? 0).toPrecision(3)}${metric.descriptor.unit} max=${String(h.max)}`);
    }
  }
}
await tracerProvider.shutdown();
