/**
 * ONNX graph tooling of the core, on onnx-proto: read, inspect, rewrite and build models without onnxruntime.
 */
export { inspectModel, type ModelInspection, type ValueSummary } from './inspect.js';
export { rewriteForServing, type RewriteResult } from './rewrites.js';
export { describeType, type Dim, type TypeKind } from './proto.js';
