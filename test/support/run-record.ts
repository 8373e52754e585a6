/** A complete run record for store tests and benchmarks: a `running` stateless run, with any fields overridden. */
import type { RunRecord } from '../../src/store/ports.ts';

export function runRecord(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 'run_1',
    project: 'p1',
    agentId: 'agt_1',
    agentName: 'a',
    agentVersion: 1,
    threadId: null,
    status: 'running',
    input: 'hi',
    output: null,
    model: 'demo/x',
    steps: 0,
    inputTokens: 0,
    outputTokens: 0,
    cost: 0,
    error: null,
    metadata: {},
    createdAt: 0,
    startedAt: 0,
    finishedAt: null,
    ...overrides,
  };
}
