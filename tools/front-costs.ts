/**
 * The cost per million inferences of each front (docs/fronts.md, "Cost per million"), computed from one table of
 * list prices and one measured workload, beside SageMaker Serverless Inference at the same memory. The docs table
 * is this tool's output; a test re-renders it and compares, so the numbers cannot drift from the prices.
 *
 * @example
 * ```sh
 * npx tsx tools/front-costs.ts        # prints the markdown table of docs/fronts.md
 * npx tsx tools/front-costs.ts --duration-ms 12 --memory-mb 2048 --request-bytes 90000   # your model
 * ```
 */
import { pathToFileURL } from 'node:url';

/**
 * us-east-1 list prices at the time of writing (USD), first pricing tier; check the AWS pricing pages for your
 * region and volume.
 */
export const PRICES = {
  /** Lambda: per request, and per GB-second by architecture (billed per 1 ms). */
  lambdaPerMillionRequests: 0.2,
  lambdaPerGbSecond: { arm64: 0.0000133334, x86_64: 0.0000166667 },
  /** API Gateway REST API: per million requests (first 333 million). */
  restPerMillion: 3.5,
  /** API Gateway HTTP API: per million requests (first 300 million), metered in 512 KB increments of payload. */
  httpPerMillion: 1.0,
  httpMeteringBytes: 512 * 1024,
  /** CloudFront: per million HTTPS requests (North America), and per GB to the internet; origin fetches are free. */
  cloudFrontPerMillion: 1.0,
  cloudFrontPerGbOut: 0.085,
  /** Data transfer out to the internet from API Gateway, Lambda function URLs and SageMaker: per GB (first 10 TB). */
  internetPerGbOut: 0.09,
  /** SageMaker Serverless Inference: per GB-second of the configured memory, and per GB of data processed in and out. */
  sageMakerPerGbSecond: 0.00002,
  sageMakerDataPerGb: 0.016,
  /** SageMaker Serverless memory sizes: 1 to 6 GB in steps of 1 GB. */
  sageMakerMemoryStepMb: 1024,
} as const;

/** What one inference takes: measured by `npm run bench` (README, Performance). */
export interface Workload {
  /** Where the figures come from. */
  readonly source: string;
  /** The function's memory, in MB. */
  readonly memoryMb: number;
  /** The handler's warm duration per inference, in ms. */
  readonly durationMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/**
 * The bench's light image model (README, Performance, reference run): `warm_overhead_ratio` 58.4 ms for the handler
 * with a binary `1x3x224x224` FP32 request (602,112 bytes of tensor plus its JSON header) at 3,538 MB; 1,000
 * class scores back as binary FP32 plus their header.
 */
export const BENCH_LIGHT_MODEL: Workload = {
  source: 'bench reference run: light_inception_v1, binary request, 3,538 MB',
  memoryMb: 3538,
  durationMs: 58.4,
  requestBytes: 602_112 + 160,
  responseBytes: 4_000 + 120,
};

/** One row of the table: a front (or SageMaker) on one architecture, per million inferences. */
export interface CostRow {
  readonly front: string;
  readonly architecture: string;
  readonly compute: number;
  readonly requests: number;
  readonly frontDoor: number;
  readonly dataTransfer: number;
  readonly total: number;
}

const GB = 1024 ** 3;
const MILLION = 1_000_000;

/** The cost rows for `workload`: each front on each architecture, then SageMaker Serverless at the same memory. */
export function frontCosts(workload: Workload = BENCH_LIGHT_MODEL): CostRow[] {
  const gb = workload.memoryMb / 1024;
  const billedSeconds = Math.ceil(workload.durationMs) / 1000;
  const outGb = (workload.responseBytes * MILLION) / GB;
  const httpUnits = Math.max(
    1,
    Math.ceil(Math.max(workload.requestBytes, workload.responseBytes) / PRICES.httpMeteringBytes),
  );
  const fronts: { name: string; frontDoor: number; outPerGb: number }[] = [
    { name: 'REST API (`api=rest`)', frontDoor: PRICES.restPerMillion, outPerGb: PRICES.internetPerGbOut },
    {
      name: `HTTP API (\`api=http\`${httpUnits > 1 ? `, ${httpUnits} metered units per request` : ''})`,
      frontDoor: PRICES.httpPerMillion * httpUnits,
      outPerGb: PRICES.internetPerGbOut,
    },
    { name: 'function URL (`api=url`)', frontDoor: 0, outPerGb: PRICES.internetPerGbOut },
    {
      name: 'function URL + CloudFront (`api=url`, `cloudfront=true`)',
      frontDoor: PRICES.cloudFrontPerMillion,
      outPerGb: PRICES.cloudFrontPerGbOut,
    },
  ];
  const rows: CostRow[] = [];
  for (const front of fronts) {
    for (const architecture of ['arm64', 'x86_64'] as const) {
      const compute = gb * billedSeconds * PRICES.lambdaPerGbSecond[architecture] * MILLION;
      const dataTransfer = outGb * front.outPerGb;
      rows.push(row(front.name, architecture, compute, PRICES.lambdaPerMillionRequests, front.frontDoor, dataTransfer));
    }
  }
  const sageMaker = (name: string, memoryGb: number): CostRow => {
    // Billed per ms of inference duration; data processed in and out, and the answer's transfer to the internet.
    const compute = memoryGb * (workload.durationMs / 1000) * PRICES.sageMakerPerGbSecond * MILLION;
    const processed = (((workload.requestBytes + workload.responseBytes) * MILLION) / GB) * PRICES.sageMakerDataPerGb;
    return row(name, 'managed', compute, 0, processed, outGb * PRICES.internetPerGbOut);
  };
  const nextSize = Math.ceil(workload.memoryMb / PRICES.sageMakerMemoryStepMb);
  rows.push(sageMaker('SageMaker Serverless, same memory (pro rata)', gb));
  rows.push(sageMaker(`SageMaker Serverless, ${nextSize} GB (the next size it offers)`, nextSize));
  return rows;
}

function row(
  front: string,
  architecture: string,
  compute: number,
  requests: number,
  frontDoor: number,
  dataTransfer: number,
): CostRow {
  return {
    front,
    architecture,
    compute,
    requests,
    frontDoor,
    dataTransfer,
    total: compute + requests + frontDoor + dataTransfer,
  };
}

const usd = (value: number): string => `$${value.toFixed(2)}`;

/** The markdown table of docs/fronts.md, rows as {@link frontCosts} gives them. */
export function renderCostTable(workload: Workload = BENCH_LIGHT_MODEL): string {
  const lines = [
    `Workload: ${workload.source}; ${workload.durationMs} ms billed as ${Math.ceil(workload.durationMs)} ms, ` +
      `${workload.requestBytes.toLocaleString('en-US')} bytes in, ${workload.responseBytes.toLocaleString('en-US')} bytes out.`,
    '',
    '| front | architecture | compute | Lambda requests | front door / SageMaker data processing | data out | **per million** |',
    '|---|---|---|---|---|---|---|',
    ...frontCosts(workload).map(
      (r) =>
        `| ${r.front} | ${r.architecture} | ${usd(r.compute)} | ${usd(r.requests)} | ${usd(r.frontDoor)} | ` +
        `${usd(r.dataTransfer)} | **${usd(r.total)}** |`,
    ),
  ];
  return lines.join('\n');
}

/** `--memory-mb`, `--duration-ms`, `--request-bytes`, `--response-bytes` over {@link BENCH_LIGHT_MODEL}. */
function workloadFromArgs(args: readonly string[]): Workload {
  const value = (flag: string): number | undefined => {
    const at = args.indexOf(flag);
    if (at < 0) return undefined;
    const parsed = Number(args[at + 1]);
    if (!(parsed > 0)) throw new Error(`${flag} needs a positive number, got ${args[at + 1]}`);
    return parsed;
  };
  const given = {
    memoryMb: value('--memory-mb'),
    durationMs: value('--duration-ms'),
    requestBytes: value('--request-bytes'),
    responseBytes: value('--response-bytes'),
  };
  if (Object.values(given).every((v) => v === undefined)) return BENCH_LIGHT_MODEL;
  return {
    source: 'given on the command line',
    memoryMb: given.memoryMb ?? BENCH_LIGHT_MODEL.memoryMb,
    durationMs: given.durationMs ?? BENCH_LIGHT_MODEL.durationMs,
    requestBytes: given.requestBytes ?? BENCH_LIGHT_MODEL.requestBytes,
    responseBytes: given.responseBytes ?? BENCH_LIGHT_MODEL.responseBytes,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(renderCostTable(workloadFromArgs(process.argv.slice(2))));
}
