/**
 * hotpath: backend-performance primitives for Node services. Each module is also importable on its
 * own (`hotpath/core`, `hotpath/profiling`, …).
 * @module
 */
export * from './core/index.js';
export * from './profiling/index.js';
