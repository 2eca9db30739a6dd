/**
 * hotpath: backend-performance primitives for Node services. Each module is also importable on its
 * own (`hotpath/core`, `hotpath/cache`, …); the native drivers (better-sqlite3, pg) load only when a
 * backend that needs them is constructed.
 * @module
 */
export * from './app/index.js';
export * from './batch/index.js';
export * from './cache/index.js';
export * from './client/index.js';
export * from './core/index.js';
export * from './profiling/index.js';
export * from './queue/index.js';
export * from './ratelimit/index.js';
export * from './storage/index.js';
