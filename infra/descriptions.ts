/**
 * Every description the stack synthesizes, made to fit the service that stores it. Catalog descriptions are free
 * text (any Unicode, any length) while AWS services refuse what their patterns and lengths do not allow, and only at
 * deploy time: IAM's role description pattern refuses anything outside Latin-1 (an ellipsis included), Lambda
 * stops at 256 characters. One aspect, {@link FitDescriptions}, rewrites the description properties of every
 * resource and output of the stack just before synthesis, so no construct has to remember the rules.
 */
import { CfnOutput, Stack, Token, type IAspect } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

/** What a service accepts in one description field. */
export interface DescriptionRule {
  /** Most UTF-8 bytes (a character limit is met too: a character takes at least one byte). */
  readonly maxBytes: number;
  /** One character the field accepts. */
  readonly allowed: RegExp;
  /** Stands for each run of characters the field refuses. */
  readonly replacement: string;
}

/**
 * IAM's description pattern, `^[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*$`, without the tab and line breaks
 * (every console shows descriptions on one line, so whitespace runs become one space first).
 */
const LATIN1_PRINTABLE = /^[\u0020-\u007E\u00A1-\u00FF]$/;

/**
 * The rules, from the services' CloudFormation resource schemas (cfn-lint ships them): lengths are the schemas'
 * `maxLength`; every field gets IAM's character set, the strictest of them but the security group's, so a catalog
 * description reads the same in the role and in the function.
 */
export const DESCRIPTION_RULES = {
  /** `AWS::IAM::Role.Description`: 1000 characters, IAM's pattern. */
  iamRole: { maxBytes: 1000, allowed: LATIN1_PRINTABLE, replacement: '?' },
  /** `AWS::Lambda::Function`, `Version`, `Alias`, `LayerVersion` `.Description`: 256 characters. */
  lambda: { maxBytes: 256, allowed: LATIN1_PRINTABLE, replacement: '?' },
  /** `AWS::CloudWatch::Alarm.AlarmDescription`: 1024 characters. */
  alarm: { maxBytes: 1024, allowed: LATIN1_PRINTABLE, replacement: '?' },
  /** `AWS::Events::Rule.Description`: 512 characters. */
  eventsRule: { maxBytes: 512, allowed: LATIN1_PRINTABLE, replacement: '?' },
  /** `AWS::EC2::SecurityGroup.GroupDescription`: 255 characters of `[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]`. */
  securityGroup: { maxBytes: 255, allowed: /^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]$/, replacement: '_' },
  /** A template's `Outputs.<id>.Description` and its own `Description`: 1024 bytes. */
  template: { maxBytes: 1024, allowed: LATIN1_PRINTABLE, replacement: '?' },
} as const satisfies Record<string, DescriptionRule>;

/** Marks a description that was cut (ASCII: IAM refuses U+2026). */
const CUT_MARK = '...';

/**
 * `text` made to fit `rule`: whitespace runs become one space, characters the field refuses are replaced by their
 * compatibility decomposition when that fits (`ﬁ` → `fi`, `é` stays, full-width letters become ASCII) and else,
 * a run at a time, by `rule.replacement`; a text still too long is cut and ends in `...`.
 * @example fitDescription('Détecteur 🚀 v2…', DESCRIPTION_RULES.iamRole) // 'Détecteur ? v2...'
 */
export function fitDescription(text: string, rule: DescriptionRule): string {
  const chars: string[] = [];
  let replaced = false;
  for (const char of text.normalize('NFC').replace(/\s+/gu, ' ').trim()) {
    const fitting = rule.allowed.test(char) ? char : decomposed(char, rule.allowed);
    if (fitting !== undefined) {
      chars.push(fitting);
      replaced = false;
    } else if (!replaced) {
      chars.push(rule.replacement);
      replaced = true;
    }
  }
  const fitted = chars.join('');
  if (utf8Length(fitted) <= rule.maxBytes) return fitted;
  let kept = '';
  let bytes = 0;
  for (const char of chars) {
    const size = utf8Length(char);
    if (bytes + size > rule.maxBytes - CUT_MARK.length) break;
    kept += char;
    bytes += size;
  }
  return `${kept.trimEnd()}${CUT_MARK}`;
}

/** The NFKC form of `char` when every character of it is allowed (`…` → `...`, `ﬁ` → `fi`), else undefined. */
function decomposed(char: string, allowed: RegExp): string | undefined {
  const normal = char.normalize('NFKC');
  if (normal === char || normal.length === 0) return undefined;
  return [...normal].every((c) => allowed.test(c)) ? normal : undefined;
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Rewrites every description of the scope it visits (add it to a stack with `Aspects.of(stack).add(...)`) to fit
 * its service ({@link DESCRIPTION_RULES}). Values that are tokens (resolved only at deploy time) are left alone.
 */
export class FitDescriptions implements IAspect {
  /** Fits the description properties of `node`, if it has any. */
  public visit(node: IConstruct): void {
    const fitTo = (value: string | undefined, rule: DescriptionRule): string | undefined =>
      value === undefined || Token.isUnresolved(value) ? value : fitDescription(value, rule);
    if (node instanceof iam.CfnRole) node.description = fitTo(node.description, DESCRIPTION_RULES.iamRole);
    else if (
      node instanceof lambda.CfnFunction ||
      node instanceof lambda.CfnVersion ||
      node instanceof lambda.CfnAlias ||
      node instanceof lambda.CfnLayerVersion
    )
      node.description = fitTo(node.description, DESCRIPTION_RULES.lambda);
    else if (node instanceof cloudwatch.CfnAlarm)
      node.alarmDescription = fitTo(node.alarmDescription, DESCRIPTION_RULES.alarm);
    else if (node instanceof events.CfnRule) node.description = fitTo(node.description, DESCRIPTION_RULES.eventsRule);
    else if (node instanceof ec2.CfnSecurityGroup)
      node.groupDescription = fitTo(node.groupDescription, DESCRIPTION_RULES.securityGroup) ?? '';
    else if (node instanceof CfnOutput) node.description = fitTo(node.description, DESCRIPTION_RULES.template);
    else if (node instanceof Stack && node.templateOptions.description !== undefined)
      node.templateOptions.description = fitTo(node.templateOptions.description, DESCRIPTION_RULES.template);
  }
}
