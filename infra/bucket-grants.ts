/**
 * The S3 rights of the functions, one helper per kind of right so every role is built the same way: object
 * actions on explicit key patterns (each wildcard acknowledged with its reason), and listing limited to prefixes.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge, wildcardResourceFinding } from './nag.js';

/**
 * Allows `actions` on the objects matching `keyPatterns` (e.g. `models/iris/*`) and acknowledges the wildcard of
 * each pattern with `reason`.
 */
export function grantObjects(
  role: iam.IRole,
  bucket: s3.IBucket,
  actions: readonly string[],
  keyPatterns: readonly string[],
  reason: string,
): void {
  const resources = keyPatterns.map((pattern) => bucket.arnForObjects(pattern));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...actions], resources }));
  const wildcards = resources.filter((resource) => resource.includes('*'));
  acknowledge(role, wildcards.map((resource) => wildcardResourceFinding(role, resource)), reason);
}

/**
 * Allows `s3:ListBucket` for listings under `prefixes` only. `StringLikeIfExists` rather than `StringLike`: S3
 * answers a GET of a missing key with 404 only to callers allowed to list the bucket, and it checks that without
 * a prefix in the request context; a plain `StringLike` would turn every "not registered yet" into a 403. The
 * price: a listing with no prefix at all is allowed too, which reveals key names (never contents).
 */
export function grantListUnder(role: iam.IRole, bucket: s3.IBucket, prefixes: readonly string[]): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLikeIfExists: { 's3:prefix': prefixes.flatMap((p) => [p, `${p}*`]) } },
    }),
  );
}
