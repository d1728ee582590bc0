/**
 * The Lambda platform choices every function and layer share: CPU architecture and Node.js runtime. Kept apart from
 * the constructs so that the layer and the functions both depend on it, and not on each other.
 */
import * as lambda from 'aws-cdk-lib/aws-lambda';

/** Lambda CPU architecture, spelled as the catalog spells it. */
export type Architecture = 'x86_64' | 'arm64';

/** Maps the catalog's architecture names to CDK's. */
export function lambdaArchitecture(arch: Architecture): lambda.Architecture {
  return arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;
}

/**
 * The Node.js runtimes the functions may run on, newest first. The artifact test runs the synthesized bundles with
 * the built layer under each of these majors (and the machine's Node).
 */
export const NODE_RUNTIMES = ['nodejs24.x', 'nodejs22.x'] as const;

/** A Lambda Node.js runtime the product supports. */
export type NodeRuntime = (typeof NODE_RUNTIMES)[number];

/**
 * The functions' runtime unless told otherwise: `nodejs22.x` is deprecated on 30 Apr 2027 (function creation blocked
 * from 1 Jun 2027), `nodejs24.x` is generally available. `cdk deploy -c runtime=nodejs22.x` chooses 22.
 */
export const DEFAULT_NODE_RUNTIME: NodeRuntime = 'nodejs24.x';

/**
 * esbuild's target for every bundle: the oldest supported runtime, so that one bundle runs on each of them.
 */
export const BUNDLE_TARGET = 'node22';

/** CDK's runtime for a supported runtime name; throws with the supported names for anything else. */
export function lambdaRuntime(name: string): lambda.Runtime {
  switch (name) {
    case 'nodejs24.x':
      return lambda.Runtime.NODEJS_24_X;
    case 'nodejs22.x':
      return lambda.Runtime.NODEJS_22_X;
    default:
      throw new Error(
        `runtime "${name}" is not supported: use ${NODE_RUNTIMES.join(' or ')} (e.g. -c runtime=nodejs22.x)`,
      );
  }
}
