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

/** The Node.js runtime every function runs on (and the layer is built for). */
export const RUNTIME = lambda.Runtime.NODEJS_22_X;
