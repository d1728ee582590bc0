/**
 * The function-URL front (`-c api=url`): each function (control, the shared infer function, each catalog model's
 * infer function or its `live` alias) gets its own Lambda function URL, with no charge beyond the function's own.
 * Callers sign with SigV4 (`AWS_IAM`). With `cloudfront`, one CloudFront distribution with origin access control
 * puts every route under one domain (a catalog model's paths to its own URL, other models to the shared one, the
 * rest to control) and signs its requests to the URLs itself: the distribution is then a public endpoint, which is
 * why it is only built with `-c auth=none`. POST and PUT bodies through it need `x-amz-content-sha256` (the
 * SHA-256 of the body, hex), which origin access control cannot compute for Lambda.
 */
import { CfnOutput } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { acknowledge } from './nag.js';
import { functionUrlInvokeMode } from './response-streaming.js';

/** Props of {@link FunctionUrlFront}. */
export interface FunctionUrlFrontProps {
  /** `'iam'`: callers sign with SigV4; `'none'`: anyone may call the URLs (asked for with `-c auth=none`). */
  readonly authorization: 'iam' | 'none';
  /**
   * One CloudFront distribution with origin access control before the URLs; the URLs keep `AWS_IAM` (only the
   * distribution may call them) and the distribution is public, so this needs `authorization: 'none'`.
   * @default false
   */
  readonly cloudfront?: boolean;
}

/** Where a function's requests come from: its routes as CloudFront path patterns (none for the default origin). */
interface Origin {
  readonly id: string;
  readonly url: lambda.FunctionUrl;
  readonly pathPatterns: readonly string[];
}

/** Function URLs, and optionally the CloudFront distribution before them. */
export class FunctionUrlFront extends Construct {
  /** Each function's URL, by the id it was added with (`Control`, `SharedModels`, `Model-<name>`). */
  public readonly urls = new Map<string, lambda.FunctionUrl>();
  /** The distribution, with `cloudfront`. */
  public distribution?: cloudfront.Distribution;
  private readonly authType: lambda.FunctionUrlAuthType;
  private readonly origins: Origin[] = [];
  private readonly withCloudFront: boolean;

  constructor(scope: Construct, id: string, props: FunctionUrlFrontProps) {
    super(scope, id);
    this.withCloudFront = props.cloudfront ?? false;
    if (this.withCloudFront && props.authorization !== 'none') {
      throw new Error(
        `${this.node.path}: cloudfront makes the endpoint public (CloudFront signs its own requests to the function ` +
          'URLs; clients are not authenticated): deploy with -c auth=none to confirm, and attach a WAF web ACL',
      );
    }
    // Behind CloudFront the URLs stay IAM-only: origin access control signs, nobody else gets in.
    this.authType =
      props.authorization === 'iam' || this.withCloudFront
        ? lambda.FunctionUrlAuthType.AWS_IAM
        : lambda.FunctionUrlAuthType.NONE;
  }

  /**
   * Gives `target` a function URL serving the paths of `pathPatterns` (CloudFront patterns, most specific first
   * across calls); an empty list makes it the distribution's default origin. `streams`: the target's answers are
   * streamed (`RESPONSE_STREAM`, the infer functions where the front streams), else buffered.
   */
  public addTarget(
    id: string,
    target: lambda.IFunction,
    pathPatterns: readonly string[],
    streams: boolean,
  ): lambda.FunctionUrl {
    const url = new lambda.FunctionUrl(this, `${id}Url`, {
      function: target,
      authType: this.authType,
      invokeMode: functionUrlInvokeMode(streams),
    });
    this.urls.set(id, url);
    this.origins.push({ id, url, pathPatterns });
    new CfnOutput(this, `${id}UrlOutput`, {
      value: url.url,
      description: `Function URL of ${id}${pathPatterns.length > 0 ? ` (${pathPatterns.join(', ')})` : ''}`,
    });
    return url;
  }

  /** Builds the distribution once every target is added (a no-op without `cloudfront`). Returns its `/v2` URL. */
  public finish(): string | undefined {
    if (!this.withCloudFront) return undefined;
    const behavior = (entry: Origin): cloudfront.BehaviorOptions => ({
      origin: origins.FunctionUrlOrigin.withOriginAccessControl(entry.url),
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      // Inference answers depend on the body: nothing is cached unless the operator adds a policy.
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      // The function URL must see its own Host; every other header (content type, inference header length) passes.
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
    });
    const fallback = this.origins.find((o) => o.pathPatterns.length === 0);
    if (fallback === undefined) throw new Error(`${this.node.path}: no default origin (control) was added`);
    const distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'onnx-serverless: KServe V2 routes over Lambda function URLs',
      defaultBehavior: behavior(fallback),
    });
    for (const entry of this.origins) {
      if (entry === fallback) continue;
      // One origin (and origin access control) per URL, shared by its path patterns.
      const { origin, ...options } = behavior(entry);
      for (const pattern of entry.pathPatterns) distribution.addBehavior(pattern, origin, options);
    }
    acknowledge(distribution, ['CFR1'], 'Inference clients may be anywhere: geo restriction is left to the operator.');
    acknowledge(
      distribution,
      ['CFR2'],
      'WAF is left to the operator (its rules and cost depend on the traffic); docs/fronts.md says how to attach one.',
    );
    acknowledge(
      distribution,
      ['CFR3'],
      "Standard logs need a bucket with ACLs; the functions' own logs and Lambda's metrics record every request.",
    );
    acknowledge(
      distribution,
      ['CFR4'],
      'The default CloudFront domain and certificate; TLS 1.2 is required once a custom domain and certificate are set.',
    );
    this.distribution = distribution;
    return `https://${distribution.distributionDomainName}/v2`;
  }
}
