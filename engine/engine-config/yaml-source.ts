// SPDX-License-Identifier: Apache-2.0
/**
 * A YAML file parsed with its positions kept, so every problem found later — an unset `${VAR}`, a
 * schema violation found by Ajv on the plain JS value, a missing transform — can be reported at the
 * line and column where the author has to fix it. Ajv only knows JSON paths
 * (`/spec/destinations/0/auth`); {@link YamlSource.position} maps such a path back to the node.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Scalar } from 'yaml';

/** A path into the parsed value: map keys and sequence indexes. */
export type FieldPath = ReadonlyArray<string | number>;

/** 1-based line and column. */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface YamlSyntaxError extends SourcePosition {
  message: string;
  hint?: string;
  /** The `yaml` library's code, e.g. `BAD_INDENT`. */
  yamlCode: string;
}

export interface YamlSource {
  /** Path of the file as given. */
  readonly file: string;
  readonly text: string;
  readonly doc: Document.Parsed;
  /**
   * Position of the node at `path`: its value, or with `at: 'key'` its key. When the path does not
   * exist (a missing required field), the position of the nearest existing ancestor.
   */
  position(path: FieldPath, at?: 'key' | 'value'): SourcePosition;
  /** Position of a character offset in the file. */
  positionOf(offset: number): SourcePosition;
}

/** Parses YAML text; syntax errors come back positioned (and the source is still returned). */
export function parseYamlSource(file: string, text: string): { source: YamlSource; errors: YamlSyntaxError[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, keepSourceTokens: false });
  const positionOf = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    return { line, column: col };
  };
  const lines = text.split(/\r?\n/);
  // One error per line: after the first, the parser's follow-on errors on that line are noise
  // (a `{ key: ${X} }` line yields ten "unexpected token" errors for one mistake).
  const errors: YamlSyntaxError[] = [];
  const linesWithError = new Set<number>();
  for (const err of doc.errors) {
    const pos = positionOf(err.pos[0]);
    if (linesWithError.has(pos.line)) continue;
    linesWithError.add(pos.line);
    const hint = syntaxHint(err.code, lines[pos.line - 1] ?? '');
    const message = err.code === 'MULTIPLE_DOCS' ? 'the file holds more than one YAML document (a --- separator)' : firstLine(err.message);
    errors.push({ ...pos, yamlCode: err.code, message: `YAML syntax: ${message}`, ...(hint !== undefined ? { hint } : {}) });
  }
  const source: YamlSource = {
    file,
    text,
    doc,
    positionOf,
    position(path, at = 'value') {
      const { node, key, complete } = locate(doc, path);
      if (complete && at === 'key' && key?.range) return positionOf(key.range[0]);
      // `source:` with nothing after it parses as an empty null scalar at the end of the line;
      // the key is where the author looks.
      if (complete && isScalar(node) && node.value === null && node.range && node.range[0] === node.range[1] && key?.range) {
        return positionOf(key.range[0]);
      }
      if (complete && node?.range) return positionOf(node.range[0]);
      // Missing leaf (`auth:` with no value, or a required key): point at the key when there is one.
      if (key?.range) return positionOf(key.range[0]);
      if (node?.range) return positionOf(node.range[0]);
      return { line: 1, column: 1 };
    },
  };
  return { source, errors };
}

/** `spec.destinations[0].auth.type`: how a path is shown to people. */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out === '' ? '(file)' : out;
}

/** Calls `visit` for every scalar value (not keys), with its path. Aliases are visited at their anchor only. */
export function walkScalars(doc: Document, visit: (node: Scalar, path: FieldPath) => void): void {
  const walk = (node: unknown, path: FieldPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        walk(pair.value, [...path, keyOf(pair.key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node)) {
      visit(node, path);
    }
  };
  walk(doc.contents, []);
}

function keyOf(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

function locate(doc: Document, path: FieldPath): { node: Node | undefined; key: Node | undefined; complete: boolean } {
  let node: unknown = doc.contents;
  let key: Node | undefined;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyOf(p.key) === String(segment));
      if (!pair) return { node: node as Node, key, complete: false };
      key = isScalar(pair.key) ? pair.key : undefined;
      if (pair.value === null || pair.value === undefined) return { node: node as Node, key, complete: false };
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined || item === null) return { node: node as Node, key, complete: false };
      key = undefined;
      node = item;
    } else {
      return { node: node as Node | undefined, key, complete: false };
    }
  }
  return { node: node as Node | undefined, key, complete: true };
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? message;
}

function syntaxHint(code: string, lineText: string): string | undefined {
  // `{ cert: ${X} }` is the classic trap: inside a flow map `{` and `}` are YAML syntax.
  if (/(^|[^$])\{.*\$\{/.test(lineText)) {
    return 'a block map (one key per line) or quote the value: key: "${VAR}"';
  }
  if (code === 'MULTIPLE_DOCS') return 'one document per file: remove the --- separator (one channel per file)';
  if (code === 'TAB_AS_INDENT') return 'indent with spaces, not tabs';
  if (code === 'DUPLICATE_KEY') return 'each key once per map';
  if (code === 'BAD_INDENT' || code === 'MISSING_CHAR') return 'keys of one map at the same indentation, two spaces per level';
  return undefined;
}
