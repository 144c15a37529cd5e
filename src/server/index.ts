export { type BuildAppOptions, buildApp } from './app.js';
export type { ServerContext } from './context.js';
export { sendError } from './error-mapping.js';
export { renderRestReference } from './reference.js';
