/**
 * Server-sent events: writes run events to a hijacked fastify reply as
 * `id: <seq>\nevent: <type>\ndata: <json>\n\n`, honouring backpressure, and ends the response after
 * the terminal event (`run.finished` / `run.failed`) or when the client goes away.
 */
import type { FastifyReply } from 'fastify';
import type { RunEvent } from '../run/stream.ts';

/** One event in the SSE wire format; `id` is the run's sequence number, so `Last-Event-ID` resumes. */
export function formatSseEvent(event: RunEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * An AbortSignal that fires when the client disconnects before the response was complete. The
 * response's `close` is used rather than the request's, which Node also emits once the body is read.
 * Complete means ended by the server (`writableEnded`), not yet flushed to the client: what a run
 * had to answer is then written, and an `inject`ed response (never flushed) is not taken for a
 * client that went away, with an Error built for each.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const response = reply.raw;
  response.once('close', () => {
    if (!response.writableEnded) controller.abort(new Error('the client went away'));
  });
  return controller.signal;
}

/**
 * Takes over the reply and streams `events` as SSE until they end (the iterable stops after the
 * run's terminal event) or `signal` aborts. Resolves when the response is closed.
 */
export function sendSse(
  reply: FastifyReply,
  events: AsyncIterable<RunEvent>,
  signal: AbortSignal,
): Promise<void> {
  return streamSse(reply, formatted(events), signal);
}

async function* formatted(events: AsyncIterable<RunEvent>): AsyncGenerator<string> {
  for await (const event of events) yield formatSseEvent(event);
}

/**
 * Takes over the reply and writes already formatted SSE chunks until they end or `signal` aborts,
 * waiting for the socket to drain when it is full. Resolves when the response is closed.
 */
export async function streamSse(
  reply: FastifyReply,
  chunks: AsyncIterable<string>,
  signal: AbortSignal,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no', // nginx: do not buffer the stream
  });
  res.flushHeaders();
  try {
    for await (const chunk of chunks) {
      if (signal.aborted || res.destroyed) break;
      if (!res.write(chunk)) await drained(res, signal);
    }
  } catch (err) {
    // The response is already streaming: the client learns of the failure from the missing end.
    reply.log.error({ err }, 'event stream failed');
  } finally {
    if (!res.destroyed) res.end();
  }
}

function drained(res: FastifyReply['raw'], signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
