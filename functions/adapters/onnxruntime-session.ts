/**
 * The `SessionFactory` of the core on onnxruntime-node: converts between the core's tensors and `ort.Tensor`,
 * and between onnxruntime's type names and V2 datatypes.
 */
import * as ort from 'onnxruntime-node';
import { BadRequestError, ModelRejectedError, PayloadTooLargeError } from '../core/errors.js';
import { redactInternals } from '../core/redact.js';
import type { ModelSession, SessionFactory, SessionOptions } from '../core/session.js';
import type { Datatype, Tensor, TensorData, TensorSpec } from '../core/types.js';

/** onnxruntime's tensor element type for each V2 datatype. */
export const ORT_TYPE_BY_DATATYPE = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
} as const satisfies Record<Datatype, ort.Tensor.Type>;

const DATATYPE_BY_ORT_TYPE: ReadonlyMap<string, Datatype> = new Map(
  Object.entries(ORT_TYPE_BY_DATATYPE).map(([datatype, ortType]) => [ortType, datatype as Datatype]),
);

/** Maps onnxruntime's element type name to a V2 datatype; `undefined` when V2 has none (e.g. float8). */
export function datatypeOfOrtType(ortType: string): Datatype | undefined {
  return DATATYPE_BY_ORT_TYPE.get(ortType);
}

/** The core's tensor specs for onnxruntime's input or output metadata; refuses what V2 cannot carry. */
export function specsOf(
  metadata: readonly ort.InferenceSession.ValueMetadata[],
  side: 'input' | 'output',
): TensorSpec[] {
  return metadata.map((value) => {
    if (!value.isTensor) {
      throw new ModelRejectedError(
        `${side} "${value.name}" is not a tensor (a sequence or map); onnxruntime-node can only serve tensor ${side}s`,
      );
    }
    const datatype = datatypeOfOrtType(value.type);
    if (datatype === undefined) {
      throw new ModelRejectedError(
        `${side} "${value.name}" has element type ${value.type}, which KServe V2 cannot carry`,
      );
    }
    // Symbolic dimensions (strings) and unknown ones are dynamic: -1 in V2 metadata.
    const shape = value.shape.map((dim) => (typeof dim === 'number' && dim >= 0 ? dim : -1));
    return { name: value.name, datatype, shape };
  });
}

/** The core's tensor as an `ort.Tensor` over the same memory. */
export function toOrtTensor(tensor: Tensor): ort.Tensor {
  const type = ORT_TYPE_BY_DATATYPE[tensor.datatype];
  return new ort.Tensor(type, tensor.data as ort.Tensor.DataType, tensor.shape as number[]);
}

/** onnxruntime's output as the core's tensor. */
export function fromOrtTensor(name: string, value: ort.OnnxValue): Tensor {
  const datatype = datatypeOfOrtType(value.type);
  if (datatype === undefined) {
    throw new Error(`output "${name}" has element type ${value.type}, which KServe V2 cannot carry`);
  }
  // onnxruntime returns bool as Uint8Array and float16 as Uint16Array: the core's storage for both.
  return { name, datatype, shape: value.dims.map(Number), data: value.data as TensorData };
}

/**
 * onnxruntime's options for the core's {@link SessionOptions} (exported so that benchmarks compare against exactly
 * these). One inference runs at a time per instance, so operators run one after the other (`sequential`, one
 * inter-op thread) and each uses the instance's vCPUs (`intraOpNumThreads`).
 */
export function ortSessionOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: options.intraOpNumThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: options.graphOptimizationLevel,
    executionMode: 'sequential',
    executionProviders: ['cpu'],
    // The CPU arena keeps every block it ever grew to: one request with a 1.6 GB output left 2.4 GB resident
    // for good (measured: 112 MB before, 3.2 GB peak, 2.5 GB after). Without it the peak halves and most of the
    // memory returns, at no measurable cost per run for small models (same-run ratio 0.91, noise).
    enableCpuMemArena: false,
    // Warnings (legacy opsets, optimizer notes) would flood the function's logs on every load; errors reach
    // the caller as exceptions anyway.
    logSeverityLevel: 3,
  };
}

/** A loaded onnxruntime session behind the core's `ModelSession`. */
class OnnxruntimeModelSession implements ModelSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    public readonly inputs: readonly TensorSpec[],
    public readonly outputs: readonly TensorSpec[],
  ) {}

  /** Creates the session; a model onnxruntime cannot load is a `ModelRejectedError` with onnxruntime's reason. */
  public static async create(model: Uint8Array | string, options: SessionOptions): Promise<OnnxruntimeModelSession> {
    let session: ort.InferenceSession;
    try {
      session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, ortSessionOptions(options))
          : await ort.InferenceSession.create(model, ortSessionOptions(options));
    } catch (error) {
      throw new ModelRejectedError(`onnxruntime cannot load the model: ${messageOf(error)}`, { cause: error });
    }
    try {
      return new OnnxruntimeModelSession(
        session,
        specsOf(session.inputMetadata, 'input'),
        specsOf(session.outputMetadata, 'output'),
      );
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  public async run(inputs: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of inputs) feeds[input.name] = toOrtTensor(input);
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(feeds, outputNames as string[]);
    } catch (error) {
      throw runFailure(error);
    }
    return outputNames.map((name) => {
      const value = results[name];
      if (value === undefined) throw new Error(`onnxruntime returned no output "${name}"`);
      return fromOrtTensor(name, value);
    });
  }

  public async release(): Promise<void> {
    await this.session.release();
  }
}

// onnxruntime's words when an allocation fails (its arena, or the system allocator refusing a size).
const ALLOCATION_FAILURE = /Failed to allocate|bad_alloc|out of memory/i;

/**
 * Inputs as they cross to another thread or process (structured clone or a serialised message): the onnxruntime
 * type beside the data, so the far side builds `ort.Tensor`s without our datatype names.
 */
export function transferableInputs(
  inputs: readonly Tensor[],
): { name: string; type: string; data: unknown; shape: readonly number[] }[] {
  return inputs.map((t) => ({ name: t.name, type: ORT_TYPE_BY_DATATYPE[t.datatype], data: t.data, shape: t.shape }));
}

/** The outputs another thread or process answered, in `outputNames`' order, as tensors. */
export function tensorsFromAnswer(outputNames: readonly string[], outputs: readonly unknown[] | undefined): Tensor[] {
  return outputNames.map((name, index) => {
    const value = outputs?.[index];
    if (value === undefined) throw new Error(`onnxruntime returned no output "${name}"`);
    return fromOrtTensor(name, value as ort.OnnxValue);
  });
}

/**
 * The client error for a failed `run`. Inputs were checked against the model's metadata before; what remains is
 * data the graph refuses (a shape that a Reshape or MatMul cannot take), a 400, or inputs that make it need more
 * memory than the instance has (a `ConstantOfShape` asked for 400 GB), a 413: the request is too large, not wrong.
 */
export function runFailure(error: unknown): BadRequestError | PayloadTooLargeError {
  const message = messageOf(error);
  if (ALLOCATION_FAILURE.test(message)) {
    return new PayloadTooLargeError(
      `the inference needs more memory than this instance has (${message}): send fewer rows or smaller inputs`,
      { cause: error },
    );
  }
  return new BadRequestError(`the model refused the inputs: ${message}`, { cause: error });
}

/** onnxruntime's error text on one line, without the native source locations and signatures it quotes. */
export function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return redactInternals(message).replace(/\s+/g, ' ').trim();
}

/** The onnxruntime-node `SessionFactory`. */
export const onnxruntimeSessionFactory: SessionFactory = {
  create: (model, options) => OnnxruntimeModelSession.create(model, options),
  createFromFile: (file, options) => OnnxruntimeModelSession.create(file, options),
};
