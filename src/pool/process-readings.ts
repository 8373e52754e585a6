/**
 * What the health monitor reads of its own process: event-loop delay and utilisation
 * (perf_hooks), heap and RSS, CPU. The readings are a port so tests (and embedders with their own
 * sources) hand in figures instead of loading the machine; {@link processReadings} is the real one.
 * Each read covers the time since the previous one: the monitor reads once per interval.
 */
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** One reading of the process, over the time since the previous reading. */
export interface ProcessReading {
  /** p99 event-loop delay (ms). */
  readonly eventLoopDelayMs: number;
  /** Share of the time the event loop was busy (0..1). */
  readonly eventLoopUtilization: number;
  readonly heapUsedBytes: number;
  /** V8's heap limit (`heap_size_limit`). */
  readonly heapLimitBytes: number;
  readonly rssBytes: number;
  /** CPU time used / (wall time × cores) (0..1). */
  readonly cpuRatio: number;
}

/** Where readings come from. */
export interface HealthReadings {
  /** A reading covering the time since the previous call (or since the readings were made). */
  read(): ProcessReading;
  /** Stops whatever the readings keep running (the event-loop delay sampler). */
  close(): void;
}

/** The real readings of this process (the sampler runs until `close()`). */
export function processReadings(): HealthReadings {
  // 20 ms: fine enough for the 200 ms … 1 s delays that matter, cheap enough to leave running.
  const resolutionMs = 20;
  const delay = monitorEventLoopDelay({ resolution: resolutionMs });
  delay.enable();
  const cores = availableParallelism();
  let elu = performance.eventLoopUtilization();
  let cpu = process.cpuUsage();
  let wall = performance.now();
  return {
    read() {
      const nextElu = performance.eventLoopUtilization();
      const utilization = performance.eventLoopUtilization(nextElu, elu).utilization;
      elu = nextElu;
      const nextWall = performance.now();
      const used = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      const elapsedUs = (nextWall - wall) * 1000;
      wall = nextWall;
      // The histogram records each sampling interval whole, in nanoseconds (an idle loop reads
      // the resolution itself): the delay is what exceeds it. Empty (no sample yet), nothing.
      const p99 = delay.count === 0 ? 0 : Math.max(0, delay.percentile(99) / 1e6 - resolutionMs);
      delay.reset();
      const memory = process.memoryUsage();
      return {
        eventLoopDelayMs: Number.isFinite(p99) ? p99 : 0,
        eventLoopUtilization: Number.isFinite(utilization) ? utilization : 0,
        heapUsedBytes: memory.heapUsed,
        heapLimitBytes: getHeapStatistics().heap_size_limit,
        rssBytes: memory.rss,
        cpuRatio: elapsedUs <= 0 ? 0 : Math.min(1, (used.user + used.system) / (elapsedUs * cores)),
      };
    },
    close() {
      delay.disable();
    },
  };
}
