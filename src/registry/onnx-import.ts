import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KilnError } from '../errors.js';
import type { KeyValue } from '../tracking/index.js';
import { REGISTRY_ARTIFACT_SCHEME } from './gc.js';
import type { SqlModelRegistry } from './sql-registry.js';
import type { Actor, ModelVersion } from './types.js';
import { checkModelName } from './validation.js';

/**
 * `kiln models import model.onnx --name NAME`: an ONNX file from anywhere becomes a version.
 * onnxruntime loads it first (a file it cannot load is refused before anything is stored) and
 * its graph inputs and outputs become the version's signature. The file and the signature go
 * to the registry's own artifact namespace (`registry/<name>/<uuid>/`), the version's source
 * is `kiln-registry:/registry/<name>/<uuid>`, and a failure on the way deletes what was
 * written, so nothing half-imported remains.
 */
export interface OnnxSignature {
  format: 'onnx';
  inputs: { name: string; type: string; shape: (number | string)[] }[];
  outputs: { name: string; type: string; shape: (number | string)[] }[];
  opset?: string;
}

export const ONNX_SIZE_LIMIT = 2 * 1024 ** 3;

export async function readOnnxSignature(bytes: Uint8Array, where: string): Promise<OnnxSignature> {
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(bytes);
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: not a loadable ONNX model: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  try {
    const describe = (
      meta: readonly {
        name: string;
        isTensor: boolean;
        type?: string;
        shape?: readonly (number | string)[];
      }[],
    ) =>
      meta.map((m) => ({
        name: m.name,
        type: m.isTensor ? String(m.type) : 'non-tensor',
        shape: m.isTensor ? [...(m.shape ?? [])] : [],
      }));
    return {
      format: 'onnx',
      inputs: describe(session.inputMetadata as never),
      outputs: describe(session.outputMetadata as never),
    };
  } finally {
    await session.release();
  }
}

export async function importOnnxModel(
  registry: SqlModelRegistry,
  req: { file: string; name: string; description?: string; tags?: KeyValue[] },
  actor: Actor,
): Promise<{ version: ModelVersion; signature: OnnxSignature }> {
  const name = checkModelName(req.name);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(req.file);
  } catch {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${req.file}: no such file`);
  }
  if (!stat.isFile()) throw new KilnError('INVALID_PARAMETER_VALUE', `${req.file}: not a file`);
  if (stat.size > ONNX_SIZE_LIMIT)
    throw new KilnError(
      'RESOURCE_LIMIT_EXCEEDED',
      `${req.file}: ${stat.size} bytes is over the 2 GiB import limit`,
    );
  const bytes = fs.readFileSync(req.file);
  const signature = await readOnnxSignature(bytes, req.file);
  await registry.getRegisteredModel(name).catch(async (e) => {
    if (!(e instanceof KilnError) || e.code !== 'RESOURCE_DOES_NOT_EXIST' || e.message.includes('deleted'))
      throw e;
    await registry.createRegisteredModel({ name }, actor);
  });
  const folder = `registry/${name}/${randomUUID().replace(/-/g, '')}`;
  try {
    await registry.artifacts.put(`${folder}/model.onnx`, bytes);
    await registry.artifacts.put(`${folder}/signature.json`, JSON.stringify(signature, null, 2));
    const version = await registry.createModelVersion(
      {
        name,
        source: `${REGISTRY_ARTIFACT_SCHEME}/${folder}`,
        ...(req.description ? { description: req.description } : {}),
        tags: [
          { key: 'kiln.format', value: 'onnx' },
          { key: 'kiln.import.file', value: path.basename(req.file).slice(0, 250) },
          ...(req.tags ?? []),
        ],
      },
      actor,
    );
    return { version, signature };
  } catch (e) {
    await registry.artifacts.delete(folder).catch(() => undefined);
    throw e;
  }
}
