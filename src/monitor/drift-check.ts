import {
  loadTrainingReference,
  type MonitorContext,
  resolveMonitoredModel,
  type TrainingReference,
} from './model-reference.js';
import { type PerformanceReport, performanceReport } from './performance.js';
import { type DriftOptions, type DriftReport, driftReport } from './window-drift.js';
import { scanWindow, type WindowData } from './window-scan.js';

/** A window ending at `end` (default now) and `windowMs` long. */
export interface WindowRequest {
  windowMs: number;
  end?: number;
  /** Time buckets (chunks, timelines); default 1, or `chunks` with chunk thresholds. */
  buckets?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The reference and the scanned window of one model target (`NAME@ALIAS`, `NAME/3`). */
export async function loadMonitorWindow(
  ctx: MonitorContext,
  target: string,
  w: WindowRequest,
): Promise<{ reference: TrainingReference; data: WindowData }> {
  const model = await resolveMonitoredModel(ctx.registry, target);
  const reference = await loadTrainingReference(ctx, model);
  const to = w.end ?? Date.now();
  const data = await scanWindow(ctx.store, {
    model: model.name,
    version: model.version,
    from: to - w.windowMs,
    to,
    reference: reference.profile,
    features: reference.features,
    artifacts: ctx.artifacts,
    ...(w.buckets ? { buckets: w.buckets } : {}),
    ...(w.onProgress ? { onProgress: w.onProgress } : {}),
  });
  return { reference, data };
}

/** `kiln monitor drift` and GET /api/kiln/monitor/drift. */
export async function checkDrift(
  ctx: MonitorContext,
  target: string,
  w: WindowRequest,
  options: DriftOptions = {},
): Promise<DriftReport> {
  const buckets = options.thresholds === 'chunks' ? (options.chunks ?? 10) : w.buckets;
  const { reference, data } = await loadMonitorWindow(ctx, target, { ...w, ...(buckets ? { buckets } : {}) });
  return driftReport(reference, data, options);
}

/** `kiln monitor performance` and GET /api/kiln/monitor/performance: measured, estimated, over `buckets` time buckets. */
export async function checkPerformance(
  ctx: MonitorContext,
  target: string,
  w: WindowRequest,
): Promise<PerformanceReport> {
  const { reference, data } = await loadMonitorWindow(ctx, target, { ...w, buckets: w.buckets ?? 12 });
  return performanceReport(reference, data);
}
