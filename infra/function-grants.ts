/**
 * The S3 rights of every function, as plain data: the one source of truth that the CDK stack turns into IAM
 * policy statements (`bucket-grants.ts`) and that the embedded S3 server of `npm start` and the tests enforces
 * (`functions/local/s3-access.ts`), so that a function runs locally with exactly the permissions it is deployed
 * with. No CDK import here: the local runtime loads this module.
 */
import { ASYNC_PREFIX, asyncPrefixes } from '../functions/core/async-jobs.js';
import { BATCH_PREFIX } from '../functions/core/batch/locations.js';
import { REPOSITORY_PREFIXES } from '../functions/core/model-repository.js';

/** Object actions on keys matching patterns (`*` matches any characters, `/` included, as in IAM). */
export interface ObjectGrant {
  readonly actions: readonly string[];
  /** Key patterns such as `models/iris/*`. */
  readonly keyPatterns: readonly string[];
  /** Why the function needs it; also the acknowledgement of each wildcard for cdk-nag. */
  readonly reason: string;
}

/** What one function may do in the model bucket. */
export interface BucketAccess {
  readonly objects: readonly ObjectGrant[];
  /** `s3:ListBucket` is allowed for listings under these prefixes (see {@link bucketStatements}). */
  readonly listPrefixes: readonly string[];
}

const { uploads, models, rejected, capture } = REPOSITORY_PREFIXES;

/**
 * The async requests of one model (docs/async.md): read its inputs and job records, write its answers and job
 * records; the key rule of `parseAsyncLocation` in code, and this grant on S3.
 */
function asyncGrants(model: string): ObjectGrant[] {
  const { inputs, outputs, jobs } = asyncPrefixes(model);
  return [
    {
      actions: ['s3:GetObject'],
      keyPatterns: [`${inputs}*`, `${jobs}*`],
      reason: `Async requests read their input objects under ${inputs} and their job records under ${jobs}.`,
    },
    {
      actions: ['s3:PutObject'],
      keyPatterns: [`${outputs}*`, `${jobs}*`],
      reason: `Async requests write answers and error records under ${outputs} and job records under ${jobs}.`,
    },
  ];
}

/**
 * The per-model infer function: its own model's versions, metadata and manifest, and its own rejection records
 * (the model metadata route reports refused uploads), nothing of any other model; it writes only its own model's
 * data capture files; and its own async requests.
 */
export function inferAccess(model: string): BucketAccess {
  const own = `${models}${model}/`;
  const ownRejections = `${rejected}${model}/`;
  return {
    objects: [
      {
        actions: ['s3:GetObject'],
        keyPatterns: [`${own}*`, `${ownRejections}*`],
        reason:
          `Read-only access to this model's own prefixes ${own} (versions, metadata, manifest) and ` +
          `${ownRejections} (refused uploads, reported by the model metadata route), nothing else.`,
      },
      {
        actions: ['s3:PutObject'],
        keyPatterns: [`${capture}${model}/*`],
        reason:
          `Data capture: writes batch files of this model's sampled requests and answers under ${capture}${model}/ ` +
          '(capture/<model>/<version>/yyyy/mm/dd/hh/<file>.jsonl), and nothing else.',
      },
      ...asyncGrants(model),
    ],
    // async/<m>/: so that a missing input or job is a 404, not a 403 (see listCondition).
    listPrefixes: [own, ownRejections, `${ASYNC_PREFIX}${model}/`],
  };
}

/**
 * The shared infer function: every model without a catalog entry, so the versions, metadata and manifests of any
 * model, and the rejection records its model metadata route reports.
 */
export const SHARED_INFER_ACCESS: BucketAccess = {
  objects: [
    {
      actions: ['s3:GetObject'],
      keyPatterns: [`${models}*`, `${rejected}*`],
      reason:
        'Read-only on models/ and rejected/ of every model: this function serves any registered model without a ' +
        'catalog entry, and its metadata route reports refused uploads.',
    },
    {
      actions: ['s3:PutObject'],
      keyPatterns: [`${capture}*`],
      reason:
        'Data capture of the models this function serves (any model without a catalog entry): writes batch files ' +
        'under capture/<model>/, nothing else.',
    },
    // Any model's async requests: the same prefixes as asyncGrants, with the model as a wildcard.
    ...asyncGrants('*'),
  ],
  listPrefixes: [models, rejected, ASYNC_PREFIX],
};

/** The shared control function: health, server metadata and the repository index of every model. */
export const CONTROL_ACCESS: BucketAccess = {
  objects: [
    {
      actions: ['s3:GetObject'],
      keyPatterns: [`${models}*/manifest.json`, `${models}*/*/metadata.json`, `${rejected}*`],
      reason: 'Read-only: the repository index reads manifests, version metadata and rejection records of every model.',
    },
  ],
  listPrefixes: [models, rejected],
};

/**
 * The shared register function: reads any upload, and of each model only what deciding an upload takes (the manifest,
 * the version claims); writes versions, manifests, claims, outcome records and rejection records of any model. It
 * neither reads nor lists `rejected/`: an upload's outcome is told by the listing of `models/<m>/outcomes/`. No
 * `s3:DeleteObject`: a registration never removes anything (a number it cannot use is released for the next
 * version; see `ModelRepository.addVersion`).
 */
export const REGISTER_ACCESS: BucketAccess = {
  objects: [
    {
      actions: ['s3:GetObject'],
      keyPatterns: [`${uploads}*`, `${models}*/manifest.json`, `${models}*/claims/*`],
      reason:
        'Register reads any upload (and its sample), and the manifest and version claims of any model (it registers ' +
        'them all); never version files, metadata or rejection records.',
    },
    {
      actions: ['s3:PutObject'],
      keyPatterns: [`${models}*`, `${rejected}*`],
      reason:
        'Register writes versions, manifests, version claims and outcome records of any model, and rejection ' +
        'records (it registers them all).',
    },
    {
      // A large version file is a multipart upload (s3:PutObject); a failed one is aborted so no parts linger.
      actions: ['s3:AbortMultipartUpload'],
      keyPatterns: [`${models}*`],
      reason: 'Register aborts its own failed multipart uploads of version files, so that no stored parts linger.',
    },
  ],
  // uploads/: the pending uploads; models/: claims and outcome records (a model's, under models/<m>/).
  listPrefixes: [uploads, models],
};

/**
 * The rollout controller (the scheduled `rollout` function, and `npm start`'s timer): lists the models and reads and
 * conditionally rewrites their manifests (advance, promote, roll back), nothing else: no version, upload or record.
 */
export const ROLLOUT_ACCESS: BucketAccess = {
  objects: [
    {
      actions: ['s3:GetObject', 's3:PutObject'],
      keyPatterns: [`${models}*/manifest.json`],
      reason:
        'The rollout controller reads each model manifest and rewrites it (conditionally) to advance, promote or roll ' +
        'back a rollout; it touches no version file, upload or record.',
    },
  ],
  listPrefixes: [models],
};

/**
 * The batch function (the children of a batch job, and its first and last steps): serves any model's pinned version
 * (as the shared infer function reads `models/`), reads inputs and writes results, failure records and job records
 * under `batch/` only. Job inputs and outputs are refused anywhere else (`functions/core/batch/locations.ts`).
 */
export const BATCH_FUNCTION_ACCESS: BucketAccess = {
  objects: [
    {
      actions: ['s3:GetObject'],
      keyPatterns: [`${models}*`, `${BATCH_PREFIX}*`],
      reason:
        'Batch jobs serve any registered model (its versions, metadata and manifest under models/) and read their ' +
        'inputs, results and job records under batch/, the only prefix a job may use.',
    },
    {
      actions: ['s3:PutObject'],
      keyPatterns: [`${BATCH_PREFIX}*`],
      reason: 'Batch jobs write one result or failure record per input, and their job records, under batch/ only.',
    },
  ],
  listPrefixes: [BATCH_PREFIX],
};

/**
 * The batch state machine: its Distributed Map's `ItemReader` lists the job's input prefix, under `batch/` only.
 * (It invokes the batch function and publishes to the stack's topic: those grants are not the bucket's.)
 */
export const BATCH_STATE_MACHINE_ACCESS: BucketAccess = {
  objects: [],
  listPrefixes: [BATCH_PREFIX],
};

/** A right outside the bucket, as the stack grants it: actions, and why. */
export interface ServiceGrant {
  readonly actions: readonly string[];
  readonly reason: string;
}

/**
 * The rollout controller's rights beyond the bucket ({@link ROLLOUT_ACCESS}): reading the infer functions'
 * per-version metrics back, and publishing a rollback to the stack's alarm topic (granted on that topic only).
 */
export const ROLLOUT_SERVICE_GRANTS = {
  metrics: {
    actions: ['cloudwatch:GetMetricData'],
    reason:
      'The rollout controller reads the per-version EMF metrics of the infer functions; GetMetricData supports no ' +
      'resource-level permission, so the resource is "*".',
  },
  notify: {
    actions: ['sns:Publish'],
    reason: 'The rollout controller publishes each rollback, with its reason, to the stack alarm topic only.',
  },
} as const satisfies Record<string, ServiceGrant>;

/** An IAM policy statement in the JSON form CloudFormation deploys (arrays always, for easy evaluation). */
export interface PolicyStatementJson {
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
}

/** `arn:aws:s3:::<bucket>`, the form the embedded server evaluates against. */
export function bucketArn(bucket: string): string {
  return `arn:aws:s3:::${bucket}`;
}

/** The condition of a listing grant: `s3:prefix` under one of `prefixes` (the prefix itself or below it). */
export function listCondition(prefixes: readonly string[]): NonNullable<PolicyStatementJson['Condition']> {
  // StringLikeIfExists rather than StringLike: S3 answers a GET of a missing key with 404 only to callers allowed to
  // list the bucket, and it checks that without a prefix in the request context; a plain StringLike would turn
  // every "not registered yet" into a 403. The price: a listing with no prefix at all is allowed too, which reveals
  // key names (never contents).
  return { StringLikeIfExists: { 's3:prefix': prefixes.flatMap((p) => [p, `${p}*`]) } };
}

/**
 * The statements `access` becomes for the bucket whose ARN is `arn`: what CloudFormation deploys (the stack builds
 * them with the bucket's token ARN; a test compares the synthesized template with this) and what the embedded
 * server evaluates.
 */
export function bucketStatements(access: BucketAccess, arn: string): PolicyStatementJson[] {
  const statements: PolicyStatementJson[] = access.objects.map((grant) => ({
    Effect: 'Allow',
    Action: [...grant.actions],
    Resource: grant.keyPatterns.map((pattern) => `${arn}/${pattern}`),
  }));
  if (access.listPrefixes.length > 0) {
    statements.push({
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [arn],
      Condition: listCondition(access.listPrefixes),
    });
  }
  return statements;
}
