// SPDX-License-Identifier: Apache-2.0
/**
 * One problem found in a channel file or in the engine configuration, positioned for the author:
 * `file:line:col  CODE  message  → write: <form>` (docs/conventions.md §2). Problems are collected,
 * never thrown one at a time, so an author fixes a file in one pass.
 */
import { relative } from 'node:path';
import type { ErrorCode } from '../errors/error-codes.ts';

export type LintSeverity = 'error' | 'warning';

export interface LintIssue {
  severity: LintSeverity;
  /** Stable code, e.g. `OSPREY_ERR_CHANNEL_SCHEMA`. */
  code: ErrorCode;
  /** Path of the file (absolute when the loader was given an absolute folder). */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** The field at fault, e.g. `spec.destinations[0].auth.clientSecret`; `(file)` for the file as a whole. */
  field: string;
  message: string;
  /** The form to write instead (shown as `→ write: …`). */
  hint?: string;
  /** `metadata.name` of the channel, when it could be read. */
  channel?: string;
}

/** Orders issues by file, then position, so output reads top to bottom like the files. */
export function compareIssues(a: LintIssue, b: LintIssue): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.code.localeCompare(b.code);
}

/** `channels/x.channel.yaml:12:7  OSPREY_ERR_CHANNEL_SCHEMA  message  → write: hint` (warnings say so). */
export function formatLintIssue(issue: LintIssue, cwd: string = process.cwd()): string {
  const file = relative(cwd, issue.file) || issue.file;
  const message = issue.severity === 'warning' ? `warning: ${issue.message}` : issue.message;
  return `${file}:${issue.line}:${issue.column}  ${issue.code}  ${message}${issue.hint ? `  → write: ${issue.hint}` : ''}`;
}
