/**
 * An image body (`Content-Type: image/jpeg | image/png | image/webp`) as an inference request: checked against the
 * model's declared preprocessing, decoded through the {@link ImageDecoder} port, turned into the input tensor.
 */
import type { Limits } from '../catalog.js';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.js';
import type { EncodedInput, InferenceRequest, ModelMetadata, Tensor } from '../types.js';
import {
  IMAGE_MEDIA_TYPES,
  decodeImageOptions,
  isImageMediaType,
  type DecodeImageOptions,
  type ImageDecoder,
} from './decoder.js';
import { imageGeometry, imageToTensor, type ImageGeometry, type ImagePlacement, type RgbImage } from './preprocess.js';

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
  const image = await options.decoder.decode(body, decodeImageOptions(limits, { mediaType }));
  assertTensorFits(imageGeometry(spec, image.height, image.width), 1, limits);
  const { tensor, placement } = imageToTensor(image, spec, name, input.datatype);
  return {
    request: { inputs: [tensor], binaryOutputByDefault: options.binaryOutputs, parameters: {} },
    placement,
  };
}

/** Names of the inputs whose image preprocessing `metadata` declares: the codec's `encodedInputs`. */
export function declaredImageInputs(metadata: ModelMetadata): ReadonlySet<string> {
  return new Set(Object.keys(metadata.preprocess?.images ?? {}));
}

/** A request whose encoded images became tensors, and where each image landed, per input, in element order. */
export interface EncodedImagesResult {
  readonly request: InferenceRequest;
  readonly placements: Readonly<Record<string, readonly ImagePlacement[]>>;
}

/**
 * Decodes the images of a request's `encodedInputs` (BYTES elements holding JPEG, PNG or WebP files, for inputs
 * with declared preprocessing) and preprocesses each as an image body would be; N elements make a batch of N
 * (`[N, 3, H, W]`), which needs a dynamic batch dimension and images of one tensor size. The other inputs are kept.
 * Each image becomes its slice of the tensor as soon as it is decoded, so at most one decoded image is held at a
 * time, and the pixels of all the request's images count against one `maxImagePixels`.
 * @throws BadRequestError (400) for a shape other than `[N]` or `[N, 1]`, a batch the input cannot take, or bytes
 *   that are not such an image (naming the input and element); PayloadTooLargeError (413) over `maxImagePixels`,
 *   `maxJpegScans`, `imageDecodeTimeoutSeconds` or `maxElements`.
 */
export async function decodeEncodedImages(
  request: InferenceRequest,
  options: Omit<ImageRequestOptions, 'mediaType' | 'binaryOutputs'>,
): Promise<EncodedImagesResult> {
  const { encodedInputs = [], ...rest } = request;
  const tensors: Tensor[] = [];
  const placements: Record<string, ImagePlacement[]> = {};
  // Every tensor counts against maxElements, each image tensor checked before it is allocated.
  let used = rest.inputs.reduce((sum, t) => sum + t.data.length, 0);
  let pixels = 0;
  for (const encoded of encodedInputs) {
    const converted = await encodedImageTensor(encoded, options, used, pixels);
    tensors.push(converted.tensor);
    placements[encoded.name] = converted.placements;
    used += converted.tensor.data.length;
    pixels = converted.pixels;
  }
  return { request: { ...rest, inputs: [...rest.inputs, ...tensors] }, placements };
}

async function encodedImageTensor(
  encoded: EncodedInput,
  options: Omit<ImageRequestOptions, 'mediaType' | 'binaryOutputs'>,
  used: number,
  pixelsBefore: number,
): Promise<{ tensor: Tensor; placements: ImagePlacement[]; pixels: number }> {
  const { metadata, limits } = options;
  const { name, shape, elements } = encoded;
  const subject = `input "${name}"`;
  const spec = metadata.preprocess?.images[name];
  const input = metadata.inputs.find((i) => i.name === name);
  if (spec === undefined || input === undefined) {
    // The caller passes the declared inputs to the codec; anything else is a bug.
    throw new Error(`${subject} has no declared image preprocessing`);
  }
  const datatype = input.datatype;
  if (!(datatype === 'FP32' || datatype === 'FP16' || datatype === 'UINT8')) {
    throw new BadRequestError(`${subject} is ${datatype}, which cannot hold an image (the declaration is invalid)`);
  }
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new BadRequestError(
      `${subject}: an image input sent as BYTES has shape [N] (or [N, 1]), one encoded image per element; got ` +
        `[${shape.join(', ')}]`,
    );
  }
  const count = elements.length;
  const batch = input.shape[0];
  if (count === 0) throw new BadRequestError(`${subject}: send at least one image (shape [1])`);
  if (count > 1 && batch !== -1) {
    throw new BadRequestError(
      `${subject}: ${count} images were sent, but the model's input [${input.shape.join(', ')}] takes a batch of ` +
        `${batch}: send shape [${batch}]`,
    );
  }
  const placements: ImagePlacement[] = [];
  let pixels = pixelsBefore;
  let first: ImageGeometry | undefined;
  let batch4: { data: Float32Array | Uint16Array | Uint8Array; shape: number[]; per: number } | undefined;
  for (let index = 0; index < count; index++) {
    const decodeOptions = decodeImageOptions(limits, { pixelsBefore: pixels });
    const image = await decodeElement(options.decoder, elements[index]!, decodeOptions, subject, index);
    pixels += image.width * image.height;
    const geometry = imageGeometry(spec, image.height, image.width);
    assertTensorFits(geometry, count, limits, used);
    if (first !== undefined && (first.height !== geometry.height || first.width !== geometry.width)) {
      throw new BadRequestError(
        `${subject}: image ${index} becomes a ${geometry.height} x ${geometry.width} tensor but image 0 a ` +
          `${first.height} x ${first.width} one, and one batch has one size: send images of one size, or one per request`,
      );
    }
    first ??= geometry;
    // Converted now, so that the decoded pixels can go before the next image is decoded.
    const { tensor, placement } = imageToTensor(image, spec, name, datatype);
    placements.push(placement);
    if (count === 1) return { tensor, placements, pixels };
    if (batch4 === undefined) {
      const per = tensor.data.length;
      const data =
        datatype === 'FP32'
          ? new Float32Array(per * count)
          : datatype === 'FP16'
            ? new Uint16Array(per * count)
            : new Uint8Array(per * count);
      batch4 = { data, shape: [count, ...tensor.shape.slice(1)], per };
    }
    batch4.data.set(tensor.data as typeof batch4.data, index * batch4.per);
  }
  return { tensor: { name, datatype, shape: batch4!.shape, data: batch4!.data }, placements, pixels };
}

/** Decodes one element, its errors naming the input and the element. */
async function decodeElement(
  decoder: ImageDecoder,
  bytes: Uint8Array,
  options: DecodeImageOptions,
  subject: string,
  index: number,
): Promise<RgbImage> {
  try {
    return await decoder.decode(bytes, options);
  } catch (error) {
    const where = `${subject}, BYTES element ${index}`;
    if (error instanceof PayloadTooLargeError) throw new PayloadTooLargeError(`${where}: ${error.message}`);
    if (error instanceof BadRequestError) throw new BadRequestError(`${where}: ${error.message}`, { cause: error });
    throw error;
  }
}

/**
 * Refuses an image whose tensor (times `count` images), with the `used` elements of the request's other tensors,
 * would be over `maxElements`, before it is allocated.
 */
function assertTensorFits(geometry: ImageGeometry, count: number, limits: Limits, used = 0): void {
  const elements = geometry.height * geometry.width * 3 * count;
  if (elements + used > limits.maxElements) {
    throw new PayloadTooLargeError(
      `the image${count > 1 ? 's become' : ' becomes'} a ${count > 1 ? `${count} x ` : ''}${geometry.height} x ` +
        `${geometry.width} x 3 tensor (${elements} elements${used > 0 ? `, with ${used} in the other inputs` : ''}), ` +
        `over the limit of ${limits.maxElements} (limits.maxElements): send ` +
        (count > 1 ? 'fewer images per request, or ' : '') +
        'a smaller image or lower preprocess "max_side"',
    );
  }
}
