import type { Run } from '../tracking/index.js';
import type { SqlModelRegistry } from './sql-registry.js';

export interface SignatureFile {
  inputs: { name: string; type: string; expr?: string; levels?: string[] }[];
  target?: unknown;
  output?: unknown;
}

/** The run's `model/signature.json` as `kiln train` writes it; absent for models logged otherwise. */
export async function readSignature(
  registry: SqlModelRegistry,
  run: Run,
): Promise<SignatureFile | undefined> {
  if (!registry.tracking) return undefined;
  try {
    const stream = await registry.tracking.downloadArtifact(run.info.run_id, 'model/signature.json');
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk));
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SignatureFile;
    return Array.isArray(parsed.inputs) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
