import { afterEach, describe, expect, it, vi } from 'vitest';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { Sequencer, encodeEventKey } from '../../functions/local/s3-event.js';
import { KeyedMutex } from '../../functions/local/s3-keyed-mutex.js';

describe('encodeEventKey', () => {
  it.each([
    ['uploads/m/x.onnx', 'uploads/m/x.onnx'],
    ['uploads/my model/v 1.onnx', 'uploads/my+model/v+1.onnx'],
    ['uploads/m/a+b.onnx', 'uploads/m/a%2Bb.onnx'],
    ["uploads/m/(it's)!~*.onnx", 'uploads/m/%28it%27s%29%21%7E*.onnx'],
    ['uploads/m/é.onnx', 'uploads/m/%C3%A9.onnx'],
  ])('encodes %j as S3 does', (key, expected) => {
    // Act
    const encoded = encodeEventKey(key);

    // Assess
    expect(encoded).toBe(expected);
    expect(decodeURIComponent(encoded.replace(/\+/g, ' '))).toBe(key);
  });
});

describe('Sequencer', () => {
  it('issues strictly increasing, equally long hexadecimal values, even within one millisecond', () => {
    // Prepare
    const sequencer = new Sequencer();

    // Act
    const values = Array.from({ length: 1000 }, () => sequencer.next());

    // Assess
    expect(new Set(values).size).toBe(1000);
    expect([...values].sort()).toEqual(values);
    expect(values.every((value) => /^[0-9A-F]{16}$/.test(value))).toBe(true);
  });
});

describe('KeyedMutex', () => {
  it('runs sections of one key one at a time, in arrival order, and other keys alongside', async () => {
    // Prepare
    const mutex = new KeyedMutex();
    const log: string[] = [];
    let releaseFirst: () => void = () => undefined;
    const firstHeld = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });

    // Act
    const first = mutex.run('a', async () => {
      log.push('a1 start');
      await firstHeld;
      log.push('a1 end');
    });
    const second = mutex.run('a', async () => {
      log.push('a2');
    });
    await mutex.run('b', async () => {
      log.push('b');
    });
    releaseFirst();
    await Promise.all([first, second]);

    // Assess
    expect(log).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
  });

  it('releases the key when a section throws', async () => {
    // Prepare
    const mutex = new KeyedMutex();

    // Act
    const failing = mutex.run('a', async () => {
      throw new Error('boom');
    });
    const next = mutex.run('a', async () => 'ran');

    // Assess
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
  });
});

describe('createS3Client', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('uses the given region, else AWS_REGION, else us-east-1', async () => {
    // Prepare
    vi.stubEnv('AWS_REGION', 'eu-west-3');

    // Act
    const explicit = createS3Client({ region: 'ap-south-1' });
    const fromEnvironment = createS3Client();
    vi.stubEnv('AWS_REGION', undefined);
    const fallback = createS3Client();

    // Assess
    expect(await explicit.config.region()).toBe('ap-south-1');
    expect(await fromEnvironment.config.region()).toBe('eu-west-3');
    expect(await fallback.config.region()).toBe('us-east-1');
  });

  it('addresses buckets by path on a custom endpoint, by host on AWS, and retries in standard mode', async () => {
    // Act
    const local = createS3Client({ endpoint: 'http://127.0.0.1:9000', region: 'us-east-1' });
    const aws = createS3Client({ region: 'us-east-1' });

    // Assess
    expect(local.config.forcePathStyle).toBe(true);
    expect(aws.config.forcePathStyle).toBe(false);
    expect(await local.config.retryStrategy()).toMatchObject({ mode: 'standard' });
    expect(await local.config.maxAttempts()).toBe(3);
  });
});
