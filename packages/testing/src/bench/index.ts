export * from './messages.js';
export * from './results.js';
export * from './run-suite.js';
