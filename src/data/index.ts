export type { CategoricalColumn, FeatureColumn, FeatureMatrix, NumericColumn } from './types.js';
