/**
 * An image body (`Content-Type: image/jpeg | image/png | image/webp`) as an inference request: checked against the
 * model's declared preprocessing, decoded through the {@link ImageDecoder} port, turned into the input tensor.
 */
import type { Limits } from '../catalog.js';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.js';
import type { InferenceRequest, ModelMetadata } from '../types.js';
import { IMAGE_MEDIA_TYPES, isImageMediaType, type ImageDecoder } from './decoder.js';
import { imageGeometry, imageToTensor, type ImagePlacement } from './preprocess.js';

/** The request an image body stands for, and where the image landed (the response's `parameters.image`). */
export interface ImageInferenceRequest {
  readonly request: InferenceRequest;
  readonly placement: ImagePlacement;
}

/** Settings of {@link decodeImageRequest}. */
export interface ImageRequestOptions {
  /** Lower-cased media type of the body, without parameters. */
  readonly mediaType: string;
  readonly metadata: ModelMetadata;
  readonly decoder: ImageDecoder;
  readonly limits: Limits;
  /** Outputs in the binary extension (the default: detection outputs are megabytes as JSON). */
  readonly binaryOutputs: boolean;
}

/** True for a `Content-Type` media type in the `image/` family (ours or not: others get a clear 415). */
export function isImageBody(mediaType: string): boolean {
  return mediaType.startsWith('image/');
}

/**
 * Decodes an image body into the request for the model's single image input.
 * @throws UnsupportedMediaTypeError (415) for a model without declared preprocessing or an image type we do not
 *   decode; BadRequestError (400) for a model with other inputs, or bytes that are not such an image;
 *   PayloadTooLargeError (413) for images over `maxImagePixels` or tensors over `maxElements`.
 */
export async function decodeImageRequest(
  body: Uint8Array,
  options: ImageRequestOptions,
): Promise<ImageInferenceRequest> {
  const { metadata, mediaType, limits } = options;
  const images = metadata.preprocess?.images ?? {};
  const names = Object.keys(images);
  const who = `model "${metadata.name}" version ${metadata.version}`;
  if (names.length === 0) {
    throw new UnsupportedMediaTypeError(
      `${who} declares no image preprocessing, so it takes no ${mediaType} body: send V2 JSON or the binary tensor ` +
        'extension, or upload the model again with "preprocess" in its sidecar (<file>.onnx.json) or catalog entry',
    );
  }
  if (!isImageMediaType(mediaType)) {
    throw new UnsupportedMediaTypeError(`unsupported image type ${mediaType}: send ${IMAGE_MEDIA_TYPES.join(', ')}`);
  }
  if (names.length !== 1 || metadata.inputs.length !== 1) {
    throw new BadRequestError(
      `${who} has ${metadata.inputs.length} inputs (${metadata.inputs.map((i) => `"${i.name}"`).join(', ')}), so a ` +
        'bare image body cannot feed it: send the binary tensor extension with every input',
    );
  }
  const name = names[0]!;
  const spec = images[name]!;
  const input = metadata.inputs[0]!;
  if (input.name !== name || !(input.datatype === 'FP32' || input.datatype === 'FP16' || input.datatype === 'UINT8')) {
    // Registration refuses such declarations; a hand-edited metadata file is the only way here.
    throw new BadRequestError(`${who} declares image preprocessing for "${name}", which is not its image input`);
  }
  const image = await options.decoder.decode(body, { maxPixels: limits.maxImagePixels, mediaType });
  const geometry = imageGeometry(spec, image.height, image.width);
  const elements = geometry.height * geometry.width * 3;
  if (elements > limits.maxElements) {
    throw new PayloadTooLargeError(
      `the image becomes a ${geometry.height} x ${geometry.width} x 3 tensor (${elements} elements), over the limit ` +
        `of ${limits.maxElements} (limits.maxElements): send a smaller image or lower preprocess "max_side"`,
    );
  }
  const { tensor, placement } = imageToTensor(image, spec, name, input.datatype);
  return {
    request: { inputs: [tensor], binaryOutputByDefault: options.binaryOutputs, parameters: {} },
    placement,
  };
}
