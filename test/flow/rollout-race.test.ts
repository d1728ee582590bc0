/**
 * A registration and the rollout controller write the same manifest: a forced race in each direction, over the
 * embedded S3's real conditional writes (`If-Match`), shows that neither loses the other's update. The fault is a
 * store that holds one writer between its read of the manifest and its write, while the other writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import type { PutCondition } from '../../functions/core/blob-store.js';
import { ModelRepository, repositoryKeys } from '../../functions/core/model-repository.js';
import { FigureLog, runRolloutController } from '../../functions/core/rollout-controller.js';
import { type FlowStack, linearModel, startFlowStack } from './fixture.js';

/** The S3 store, holding its first manifest write of `model` until `release` is called. */
class GatedStore extends S3BlobStore {
  /** Resolves when the held write has reached the gate (its read of the manifest is done). */
  public readonly reached: Promise<void>;
  private signal: () => void = () => undefined;
  private opened: () => void = () => undefined;
  private readonly gate = new Promise<void>((resolve) => {
    this.opened = resolve;
  });
  private held = false;

  public constructor(
    client: ConstructorParameters<typeof S3BlobStore>[0],
    bucket: string,
    private readonly model: string,
  ) {
    super(client, bucket);
    this.reached = new Promise((resolve) => {
      this.signal = resolve;
    });
  }

  public release(): void {
    this.opened();
  }

  public override async put(key: string, body: Uint8Array, condition?: PutCondition): Promise<{ etag: string }> {
    if (!this.held && key === repositoryKeys.manifest(this.model)) {
      this.held = true;
      this.signal();
      await this.gate;
    }
    return super.put(key, body, condition);
  }
}

let flow: FlowStack;

beforeAll(async () => {
  // The stack's own controller runs every minute: it stays out of these races, which drive a controller by hand.
  flow = await startFlowStack({ ROLLOUT_INTERVAL_SECONDS: '3600' });
});
afterAll(async () => {
  await flow?.close();
});

/** A store on the embedded S3 under `role`'s deployed grants, gated on the manifest of `model`. */
function gatedStore(role: 'rollout' | 'register', model: string): GatedStore {
  const { s3 } = flow.stack;
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.credentialsFor(role),
  });
  return new GatedStore(client, s3.bucket, model);
}

/** Starts a linear rollout of version 2 against 1 (steps of 25 % at once), so that the controller's next run steps. */
async function linearRollout(model: string): Promise<void> {
  await flow.uploadAndWait(model, 'v1.onnx', linearModel(1));
  await flow.uploadAndWait(model, 'v2.onnx', linearModel(2), {
    rollout: { strategy: 'linear', stepPercent: 25, intervalSeconds: 0 },
  });
}

describe('registration and controller racing on one manifest', () => {
  it("keeps an upload registered between the controller's read and its write, and the controller's step", async () => {
    // Prepare
    await linearRollout('race-a');
    const store = gatedStore('rollout', 'race-a');

    // Act: the controller reads the rollout at 25 % and is held before it writes 50 %; meanwhile v3 registers.
    const controller = runRolloutController({
      repository: new ModelRepository(store),
      figures: new FigureLog(),
      notify: () => undefined,
    });
    await store.reached;
    const outcome = await flow.uploadAndWait('race-a', 'v3.onnx', linearModel(3), {
      rollout: { strategy: 'linear', stepPercent: 25, intervalSeconds: 0 },
    });
    store.release();
    const notices = await controller;

    // Assess: the controller's write met a changed manifest, read it again and stepped on top of it.
    const manifest = await flow.manifest('race-a');
    expect(outcome).toMatchObject({ kind: 'registered', version: '3' });
    expect(manifest?.versions.map((v) => v.version)).toEqual(['1', '2', '3']);
    expect(manifest?.latest).toBe('1');
    expect(manifest?.rollout).toMatchObject({ candidate: '2', weight: 50, step: 2, state: 'progressing' });
    expect(notices.map((n) => [n.outcome, n.weight])).toEqual([['advanced', 50]]);
  });

  it("keeps the controller's step written between a registration's read and its write, and the version", async () => {
    // Prepare: registration's repository (register's grants) over a store held before its manifest write; the
    // controller's under the rollout role, its store held never (its gate is on another model).
    await linearRollout('race-b');
    const registrationStore = gatedStore('register', 'race-b');
    const controllerRepository = new ModelRepository(gatedStore('rollout', 'no-such-model'));
    const held = new ModelRepository(registrationStore);
    const bytes = linearModel(4);
    const sha256 = 'f'.repeat(64);

    // Act: a version is added (claim, files, then the held manifest write); meanwhile the controller steps.
    const adding = held.addVersion({
      model: 'race-b',
      modelFile: bytes,
      sha256,
      size: bytes.byteLength,
      sourceKey: 'uploads/race-b/v3.onnx',
      createdAt: new Date().toISOString(),
      rollout: {
        policy: { strategy: 'canary', percent: 10, bakingSeconds: 0, maxErrorRate: 0.05, minRequests: 10 },
        declaredBy: 'sidecar',
      },
      metadataFor: (version) => ({
        name: 'race-b',
        version,
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
        sha256,
        size: bytes.byteLength,
        sourceKey: 'uploads/race-b/v3.onnx',
        createdAt: new Date().toISOString(),
        rewrites: [],
      }),
    });
    await registrationStore.reached;
    const notices = await runRolloutController({
      repository: controllerRepository,
      figures: new FigureLog(),
      notify: () => undefined,
    });
    registrationStore.release();
    const added = await adding;

    // Assess
    const manifest = await flow.manifest('race-b');
    expect(notices.map((n) => [n.model, n.outcome, n.weight])).toContainEqual(['race-b', 'advanced', 50]);
    expect(added).toMatchObject({ kind: 'added', version: '3' });
    expect(manifest?.versions.map((v) => v.version)).toEqual(['1', '2', '3']);
    expect(manifest?.rollout).toMatchObject({ candidate: '2', weight: 50, step: 2, state: 'progressing' });
    expect(manifest?.latest).toBe('1');
  });
});
