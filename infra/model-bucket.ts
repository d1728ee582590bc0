/**
 * The model repository's storage: the versioned, locked-down bucket of DESIGN.md's S3 layout, and the bucket that
 * receives its server access logs.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from './nag.js';

/** Props of {@link ModelBucket}. */
export interface ModelBucketProps {
  /**
   * What happens to both buckets when the stack is deleted. `DESTROY` also empties them.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Days a replaced or deleted object version (an overwritten manifest, a deleted model file) stays recoverable.
   * @default 30
   */
  readonly noncurrentVersionDays?: number;
  /**
   * Days the access logs are kept.
   * @default 90
   */
  readonly accessLogDays?: number;
}

/** The model bucket (public access blocked, TLS only, encrypted, versioned, access-logged) and its log bucket. */
export class ModelBucket extends Construct {
  /** The model repository: `uploads/`, `models/`, `rejected/`. */
  public readonly bucket: s3.Bucket;
  /** Receives the model bucket's server access logs under `model-bucket/`. */
  public readonly accessLogBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: ModelBucketProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const noncurrentDays = props.noncurrentVersionDays ?? 30;
    const logDays = props.accessLogDays ?? 90;
    for (const [name, days] of [
      ['noncurrentVersionDays', noncurrentDays],
      ['accessLogDays', logDays],
    ] as const) {
      if (!Number.isInteger(days) || days < 1)
        throw new Error(`${this.node.path}: ${name} must be a positive integer, got ${days}`);
    }
    const destroy = removalPolicy === RemovalPolicy.DESTROY;
    // Access-log delivery by bucket policy, so the log bucket can keep ACLs disabled (BucketOwnerEnforced). Set
    // here, before the buckets exist, so the construct is right in any stack.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);

    this.accessLogBucket = new s3.Bucket(this, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(logDays) }],
      removalPolicy,
      autoDeleteObjects: destroy,
    });
    this.bucket = new s3.Bucket(this, 'ModelBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Versioning keeps overwritten manifests and deleted versions recoverable; the rules bound what that costs.
      versioned: true,
      lifecycleRules: [
        { noncurrentVersionExpiration: Duration.days(noncurrentDays) },
        { abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: 'model-bucket/',
      removalPolicy,
      autoDeleteObjects: destroy,
    });
    acknowledge(
      this.accessLogBucket,
      ['S1'],
      'This is the access-log bucket itself; logging it into itself would loop.',
    );
  }
}
