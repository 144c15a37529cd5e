import { KilnError } from '../errors.js';
import { GBDT_LEARNER, loadGbdtModel } from './gbdt/model.js';
import { loadIsolationForestModel } from './iforest/model.js';
import { loadLinearModel } from './linear/model.js';
import { decodeModel, type ModelContainer } from './model-format.js';
import { loadPipelineModel } from './preprocess/pipeline.js';
import type { Model } from './types.js';

/**
 * Turns a serialised model back into a Model, whichever learner made it. Each learner adds
 * its loader here (one line) so callers never need to know which learner they hold.
 */
type ModelLoader = (container: ModelContainer) => Model;

const LOADERS: Record<string, ModelLoader> = {
  [GBDT_LEARNER]: loadGbdtModel,
  linear: loadLinearModel,
  iforest: loadIsolationForestModel,
  pipeline: loadPipelineModel,
};

export function loadModel(bytes: Uint8Array): Model {
  const container = decodeModel(bytes);
  const loader = LOADERS[container.learner];
  if (!loader) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `model file was written by learner '${container.learner}', which this kiln does not know (known: ${Object.keys(LOADERS).join(', ') || 'none'})`,
    );
  }
  return loader(container);
}
