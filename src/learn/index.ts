export { decodeModel, encodeModel, type ModelContainer, type TypedArray } from './model-format.js';
export type { FitOptions, IterationInfo, Learner, Model, Task, TrainingData } from './types.js';
export * from './metrics/index.js';
