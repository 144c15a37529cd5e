import { createWriteStream, type WriteStream } from 'node:fs';
import type { InputWarning, ModelInput, OutputTensor } from './types.js';

/**
 * The hand-off from serving to monitoring: every answered prediction (and every shadow answer)
 * becomes a record offered to a bounded buffer. `offer` never waits and never throws: when the
 * buffer is full the record is dropped and counted, so a slow sink can cost monitoring data but
 * never a response's latency. A drain loop hands records to the sink in batches, off the
 * request path (setImmediate), one sink call at a time; `flush` waits for the buffer to empty
 * (graceful shutdown).
 */
export interface PredictionRecord {
  time: string;
  requestId: string;
  /**
   * The model this version is (what `kiln monitor --model` reads): the registered model a
   * `models:/` source resolved to, else the served name.
   */
  model: string;
  version: string;
  /** The served name (deployment) when it differs from `model`. */
  deployment?: string;
  /** True for a shadow version's answer: logged for comparison, never returned. */
  shadow: boolean;
  latencyMs: number;
  inputs: Record<string, unknown[]>;
  outputs: Record<string, unknown[]>;
  warnings?: InputWarning[];
  /** Set for a request that failed: its error code (inputs and outputs are then empty). */
  error?: string;
}

export interface PredictionSink {
  write(records: PredictionRecord[]): Promise<void>;
  close?(): Promise<void>;
}

export class PredictionHook {
  private buffer: PredictionRecord[] = [];
  private draining: Promise<void> | undefined;

  constructor(
    private readonly sink: PredictionSink | undefined,
    private readonly capacity: number,
    private readonly counters: { logged(n: number): void; dropped(n: number): void },
  ) {}

  offer(record: () => PredictionRecord): void {
    if (!this.sink) return;
    if (this.buffer.length >= this.capacity) {
      this.counters.dropped(1);
      return;
    }
    this.buffer.push(record());
    this.counters.logged(1);
    if (!this.draining) this.draining = new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.sink?.close?.();
  }

  private async drain(): Promise<void> {
    try {
      while (this.buffer.length > 0) {
        const records = this.buffer;
        this.buffer = [];
        try {
          await this.sink!.write(records);
        } catch {
          this.counters.dropped(records.length);
        }
      }
    } finally {
      this.draining = undefined;
    }
  }
}

/** One JSON object per line, appended to a file (what `kiln serve --prediction-log` writes). */
export class JsonLinesSink implements PredictionSink {
  private readonly stream: WriteStream;
  constructor(file: string) {
    this.stream = createWriteStream(file, { flags: 'a' });
  }
  write(records: PredictionRecord[]): Promise<void> {
    const text = `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;
    return new Promise((resolve, reject) => this.stream.write(text, (e) => (e ? reject(e) : resolve())));
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
}

/** A request's input and answer as plain arrays for a record (built only when a sink exists). */
export function recordColumns(input: ModelInput): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  if (input.kind === 'columns') for (const [k, v] of input.columns) out[k] = Array.from(v);
  else for (const t of input.tensors) out[t.name] = Array.from(t.data);
  return out;
}

export function recordOutputs(outputs: OutputTensor[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const t of outputs) out[t.name] = Array.from(t.data);
  return out;
}
