import { type LoadPackageOptions, loadModelPackage } from './load-model-package.js';
import { KilnPackageRuntime } from './runtimes/kiln-package.js';
import { OnnxRuntime } from './runtimes/onnx.js';
import type { ModelRuntime } from './types.js';

/** A runtime loaded from a source, warmed, with what the source pointed at when it was read. */
export interface OpenedRuntime {
  runtime: ModelRuntime;
  identity: string;
  /** The registry version a `models:/` source resolved to. */
  registryVersion?: string;
  /** The registered model a `models:/` source resolved to. */
  registryModel?: string;
}

/** Loads a model source (see load-model-package.ts) into the runtime for its kind and warms it. */
export async function openRuntime(source: string, options: LoadPackageOptions = {}): Promise<OpenedRuntime> {
  const pkg = await loadModelPackage(source, options);
  const runtime: ModelRuntime =
    pkg.kind === 'onnx'
      ? await OnnxRuntime.create(pkg.bytes)
      : new KilnPackageRuntime(pkg.model, pkg.signature);
  await runtime.warm();
  return {
    runtime,
    identity: pkg.identity,
    ...(pkg.registryVersion !== undefined ? { registryVersion: pkg.registryVersion } : {}),
    ...(pkg.registryModel !== undefined ? { registryModel: pkg.registryModel } : {}),
  };
}
