/**
 * ONNX graph tooling of the core, on onnx-proto: read, inspect, rewrite and build models without onnxruntime.
 */
export { inspectModel, type ModelInspection, type ValueSummary } from './inspect.js';
export { rewriteForServing, type RewriteResult } from './rewrites.js';
export {
  attr,
  encodeModel,
  mapType,
  ModelBuilder,
  sequenceType,
  tensorProto,
  tensorType,
  type AttributeValue,
  type ModelBuilderOptions,
  type NodeOptions,
  type TensorValue,
} from './model-builder.js';
export {
  buildFailingAtRunModel,
  buildIdentityModel,
  buildLargeModel,
  buildScaledLinearModel,
  buildZipMapClassifier,
  type ZipMapClassifier,
  type ZipMapClassifierOptions,
} from './sample-models.js';
export { buildExamples, catalogJson, type ExampleModel } from './examples.js';
export { describeType, type Dim, type TypeKind } from './proto.js';
