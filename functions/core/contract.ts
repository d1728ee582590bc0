/**
 * The contract between the infrastructure and the functions: every environment variable the product reads (infra
 * sets most; the local tools read a few of their own), and the metrics namespace. One home for configuration names;
 * no imports, so that `infra/`, the CLI and the local runtime can depend on it without pulling in runtime code.
 */

/** Environment variable names set on the functions. */
export const ENV = {
  modelBucket: 'MODEL_BUCKET',
  modelName: 'MODEL_NAME',
  manifestTtlSeconds: 'MANIFEST_TTL_SECONDS',
  modelLimits: 'MODEL_LIMITS',
  /**
   * `register`: the image preprocessing that catalog entries declare (`models/<name>.json` `preprocess`), as JSON
   * `{"<model>": <preprocess>}`; it applies to every version of those models registered after it is set.
   */
  catalogPreprocess: 'CATALOG_PREPROCESS',
  /**
   * `infer`: the function's data capture policy, JSON of a catalog entry's `capture` (`samplingPercent`,
   * `flushIntervalSeconds`, `maxBatchRecords`); unset, nothing is captured. `npm start`'s shared function reads it
   * too, as the deployment-wide default.
   */
  dataCapture: 'DATA_CAPTURE',
  /**
   * `register`: the rollout policies that catalog entries declare (`models/<name>.json` `rollout`), as JSON
   * `{"<model>": <policy>}` (docs/rollouts.md).
   */
  catalogRollout: 'CATALOG_ROLLOUT',
  /**
   * `rollout`: the CloudWatch and SNS endpoints, as the AWS SDKs name them (service-specific endpoint variables);
   * unset on AWS, where each service's regional endpoint is used. The artifact tests point them at loopback.
   */
  cloudwatchEndpoint: 'AWS_ENDPOINT_URL_CLOUDWATCH',
  snsEndpoint: 'AWS_ENDPOINT_URL_SNS',
  /** `rollout`: the SNS topic a rollback is published to (the stack's alarm topic); unset, rollbacks are only logged. */
  alarmTopicArn: 'ALARM_TOPIC_ARN',
  /** `npm start`: seconds between two runs of the local rollout controller (default 60, as the deployed schedule). */
  rolloutIntervalSeconds: 'ROLLOUT_INTERVAL_SECONDS',
  preload: 'PRELOAD',
  /**
   * `true` where the function's front streams answers (a function URL with `RESPONSE_STREAM`, a REST API with
   * `responseTransferMode: STREAM`; infra sets it from the front, `npm start` from the environment): the infer
   * handler is a streaming one and answers past Lambda's 6 MB buffered limit are streamed instead of refused.
   */
  responseStreaming: 'RESPONSE_STREAMING',
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
  tracerCaptureResponse: 'POWERTOOLS_TRACER_CAPTURE_RESPONSE',
  /** `true` loads the Powertools Tracer (X-Ray subsegment annotations); off by default for cold starts. */
  traceEnabled: 'POWERTOOLS_TRACE_ENABLED',
  nodeOptions: 'NODE_OPTIONS',
  /** S3-compatible endpoint (the embedded server locally); unset on AWS. */
  s3Endpoint: 'S3_ENDPOINT',
  /** A local folder used as the repository instead of S3. */
  modelDir: 'MODEL_DIR',
  graphOptimizationLevel: 'GRAPH_OPTIMIZATION_LEVEL',
  /**
   * Megabytes of model files kept loaded across all models in one process (the shared infer function serves every
   * model without a catalog entry); beyond it the least recently used sessions are released. Unset: no limit.
   */
  sessionBudgetMb: 'SESSION_BUDGET_MB',
  storageTimeoutSeconds: 'STORAGE_TIMEOUT_SECONDS',
  /**
   * Deadline of one inference in ms for models whose `MODEL_LIMITS` set no `timeoutMs`: the shared infer function
   * (deployed and under `npm start`); catalog models carry theirs in `MODEL_LIMITS`. Default 27,000 (29 s - 2 s).
   */
  inferenceTimeoutMs: 'INFERENCE_TIMEOUT_MS',
  maxModelBytes: 'MAX_MODEL_BYTES',
  /**
   * Largest model graph (an `.onnx` without its weights' values) registration holds in memory; by default what the
   * register process's share of the function's memory allows (see `config.ts`).
   */
  maxGraphBytes: 'MAX_GRAPH_BYTES',
  /** Deadline of registration's isolated onnxruntime session (load and smoke inference), in seconds. */
  registrationTimeoutSeconds: 'REGISTRATION_TIMEOUT_SECONDS',
  /** Resident-memory cap of registration's isolated onnxruntime process, in MB. */
  registrationMemoryMb: 'REGISTRATION_MEMORY_MB',
  /**
   * Tests only, a fault injection: `<signal>:<create|run>` (e.g. `SIGFPE:run`) makes registration's isolated child
   * raise that signal on itself when asked to create or to run its session, as a native crash of onnxruntime would.
   * Nothing else reads it; never set it on a deployment.
   */
  isolatedSessionFault: 'ISOLATED_SESSION_FAULT',
  /**
   * Where serving runs onnxruntime: `main` (Lambda's default), `worker` (a worker thread) or `process` (a supervised
   * child process per session, `npm start`'s default).
   */
  onnxruntimeThread: 'ONNXRUNTIME_THREAD',
  /** Serving: MiB per ranged GET of a model file (default 8). */
  downloadPartMb: 'MODEL_DOWNLOAD_PART_MB',
  /** Serving: ranged GETs of one model file in flight (default 8). */
  downloadConcurrency: 'MODEL_DOWNLOAD_CONCURRENCY',
  /** Serving: folder model files are downloaded to before onnxruntime reads them (default: the OS temp dir). */
  scratchDir: 'MODEL_SCRATCH_DIR',
  /**
   * Fault injection for the crash tests only: `register` kills its own process (SIGKILL) right after this step of
   * adding a version (`claimed`, `version-file` or `manifest`). Never set it on a deployed function.
   */
  faultKillAfterStep: 'FAULT_KILL_AFTER_REGISTRATION_STEP',
  /** Set by Lambda: `host:port` of the Runtime API, where an invocation's response is posted. */
  lambdaRuntimeApi: 'AWS_LAMBDA_RUNTIME_API',
  /** Set by Lambda. */
  functionName: 'AWS_LAMBDA_FUNCTION_NAME',
  /**
   * The Lambda API's endpoint for this function's own invocations (warmer fan-out, async jobs), as the AWS SDKs
   * read it: unset on AWS; tests point it at a loopback stand-in.
   */
  lambdaEndpoint: 'AWS_ENDPOINT_URL_LAMBDA',
  /** Set by Lambda. */
  functionMemorySize: 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  /** Set by Lambda; read by the AWS SDK and the CLI. */
  region: 'AWS_REGION',
  /** `npm start`: the local gateway's port. */
  port: 'PORT',
  /** `npm start` and the CLI: the embedded S3 server's port. */
  s3Port: 'S3_PORT',
  /** `npm start`: where the embedded S3 server keeps its data. */
  dataDir: 'DATA_DIR',
  /** `npm start`: the front the local gateway emulates, `rest` (default), `http` or `url` (docs/fronts.md). */
  front: 'FRONT',
  /** `npm start`: how the emulated front authenticates: `none` (default), `api-key`, `iam` or `jwt`. */
  frontAuth: 'FRONT_AUTH',
  /** `npm start` with `FRONT_AUTH=api-key`: the key (default: a random one, printed). */
  frontApiKey: 'FRONT_API_KEY',
  /** `npm start` with `FRONT_AUTH=jwt`: the issuer (`iss`) of the local JWTs. */
  frontJwtIssuer: 'FRONT_JWT_ISSUER',
  /** `npm start` with `FRONT_AUTH=jwt`: the audience (`aud`) of the local JWTs. */
  frontJwtAudience: 'FRONT_JWT_AUDIENCE',
  /** `npm start`: seconds the local gateway gives a request body to arrive (default 30). */
  gatewayBodyTimeoutSeconds: 'GATEWAY_BODY_TIMEOUT_SECONDS',
  /** `npm start`: bytes per second a body must keep arriving at, over each 5 s (default 16384; 0 disables). */
  gatewayMinBodyRate: 'GATEWAY_MIN_BODY_RATE',
  /** `npm start`: seconds a refused body is still read before the connection closes (default 5). */
  gatewayLingerSeconds: 'GATEWAY_LINGER_SECONDS',
  /**
   * `true` silences the AWS SDK's notice that its 2027 releases need Node 22. Set by the local tools (`npm start`,
   * `npm run models`) when unset, since Node 20 is supported locally; never set on Lambda (Node 22 or 24 there).
   */
  sdkNodeVersionWarningDisabled: 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
  /**
   * The CLI: credentials and profile of the AWS SDK's default chain. The serving functions' S3 reader signs with
   * the key pair and session token Lambda sets from the function's role.
   */
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  sessionToken: 'AWS_SESSION_TOKEN',
  /** Where a container credential endpoint serves the role's refreshed credentials (set instead of the key pair). */
  containerCredentialsFullUri: 'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  containerCredentialsRelativeUri: 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  /** The container credential endpoint's authorization token, or the file holding it. */
  containerAuthorizationToken: 'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  containerAuthorizationTokenFile: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  profile: 'AWS_PROFILE',
  /** Batch jobs: input objects per child invocation (Step Functions' `MaxItemsPerBatch`), default 32. */
  batchItemsPerChild: 'BATCH_ITEMS_PER_CHILD',
  /** `npm start`: batches of a job in flight at once (the local `MaxConcurrency`), default 2. */
  batchMaxConcurrency: 'BATCH_MAX_CONCURRENCY',
  /**
   * The CLI: the stack's batch state machine (stack output `BatchStateMachineArn`), which `batch` starts executions of
   * when `MODEL_BUCKET` is set; `--state-machine` overrides it.
   */
  batchStateMachineArn: 'BATCH_STATE_MACHINE_ARN',
  /**
   * The CLI: the Step Functions API's endpoint, as the AWS SDKs name it; unset on AWS (the state machine's regional
   * endpoint); tests point it at a loopback stand-in.
   */
  stepFunctionsEndpoint: 'AWS_ENDPOINT_URL_SFN',
} as const;

/** CloudWatch namespace of the Powertools metrics of every function. */
export const METRICS_NAMESPACE = 'OnnxServerless';
