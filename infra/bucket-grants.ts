/**
 * The S3 rights of the functions as IAM statements, built from the data of `function-grants.ts` (the one source of
 * truth the embedded S3 server also enforces locally): object actions on explicit key patterns (each wildcard
 * acknowledged with its reason), and listing limited to prefixes.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { listCondition, type BucketAccess } from './function-grants.js';
import { acknowledge, wildcardResourceFinding } from './nag.js';

/** Adds every grant of `access` on `bucket` to `role`'s policy. */
export function grantBucketAccess(role: iam.IRole, bucket: s3.IBucket, access: BucketAccess): void {
  for (const grant of access.objects) grantObjects(role, bucket, grant.actions, grant.keyPatterns, grant.reason);
  if (access.listPrefixes.length > 0) grantListUnder(role, bucket, access.listPrefixes);
}

/**
 * Allows `actions` on the objects matching `keyPatterns` (e.g. `models/iris/*`) and acknowledges the wildcard of
 * each pattern with `reason`.
 */
function grantObjects(
  role: iam.IRole,
  bucket: s3.IBucket,
  actions: readonly string[],
  keyPatterns: readonly string[],
  reason: string,
): void {
  const resources = keyPatterns.map((pattern) => bucket.arnForObjects(pattern));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...actions], resources }));
  const wildcards = resources.filter((resource) => resource.includes('*'));
  acknowledge(
    role,
    wildcards.map((resource) => wildcardResourceFinding(role, resource)),
    reason,
  );
}

/** Allows `s3:ListBucket` for listings under `prefixes` only (see {@link listCondition} for the condition). */
function grantListUnder(role: iam.IRole, bucket: s3.IBucket, prefixes: readonly string[]): void {
  const condition = listCondition(prefixes);
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: Object.fromEntries(Object.entries(condition).map(([op, values]) => [op, { ...values }])),
    }),
  );
}
