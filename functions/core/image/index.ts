/** Declared image preprocessing: settings, the pure math, and the decoder port. */
export {
  dynamicSizeSchema,
  imageAxes,
  imagePreprocessSchema,
  parsePreprocess,
  preprocessSchema,
} from './spec.js';
export type { ImagePreprocess, Preprocess } from './spec.js';
export { IMAGE_DATATYPES, checkImagePreprocess } from './input-fit.js';
export { imageGeometry, imagePlacement, imageTensorElements, imageToTensor, syntheticImage } from './preprocess.js';
export type { ImageGeometry, ImagePlacement, RgbImage } from './preprocess.js';
export {
  IMAGE_MEDIA_TYPES,
  decodeImageOptions,
  imageDecodeTimeoutError,
  imagePixelsError,
  isImageMediaType,
  jpegScansError,
} from './decoder.js';
export type { DecodeImageOptions, DecodeLimits, ImageDecoder, ImageMediaType } from './decoder.js';
export { jpegScanCount } from './jpeg-scans.js';
