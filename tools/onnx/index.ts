/**
 * Development tools on onnx-proto, never bundled into a function: the model builder, the sample models of the tests
 * and bench, and the example models of `models/` (scripts/build-examples.ts).
 */
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
  buildDivisionByBMinusOneModel,
  buildFailingAtRunModel,
  buildIdentityModel,
  buildImageGainModel,
  buildLargeModel,
  buildLoopModel,
  buildPartlyFailingLinearModel,
  buildScaledLinearModel,
  buildTileModel,
  buildZipMapClassifier,
  type ZipMapClassifier,
  type ZipMapClassifierOptions,
} from './sample-models.js';
export { buildExamples, catalogJson, examplePhotoPixels, sidecarJson, type ExampleModel } from './examples.js';
