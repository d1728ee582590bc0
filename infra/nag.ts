/**
 * cdk-nag acknowledgements (v3: CDK's `Validations.of(scope).acknowledge`). Each one names the exact rule finding
 * it covers and says why; an acknowledgement applies to the construct and everything under it.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/** The AWS Solutions rule pack's prefix. */
const PACK = 'AwsSolutions';

/**
 * Acknowledges rule findings on `scope` and its children.
 * @param ids rule ids without the pack prefix, with the finding when the rule has several: `'L1'`,
 *   `'IAM5[Resource::*]'`
 */
export function acknowledge(scope: IConstruct, ids: readonly string[], reason: string): void {
  const validations = Validations.of(scope);
  for (const id of ids) validations.acknowledge({ id: `${PACK}-${id}`, reason });
}

/**
 * The IAM5 finding id cdk-nag reports for a wildcard resource, computed from the same expression the policy uses,
 * e.g. `IAM5[Resource::<ModelBucket1234.Arn>/models/iris/*]`.
 */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `IAM5[Resource::${flattenCfnReference(Stack.of(scope).resolve(resource))}]`;
}

/** The IAM4 finding for an AWS managed policy, e.g. `service-role/AWSLambdaBasicExecutionRole`. */
export function managedPolicyFinding(policyName: string): string {
  return `IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policyName}]`;
}
