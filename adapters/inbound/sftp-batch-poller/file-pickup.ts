// SPDX-License-Identifier: Apache-2.0
/**
 * Which files of an inbox listing are complete and may be taken, by the channel's pickup mode
 * (docs/design/0013-file-sources.md § Safe pickup). Pure: the listing and the time in, the names out,
 * so every rule is unit-tested without a server.
 *
 * - `temp-name`: the sender uploads under a temporary name (`.name.filepart`, `name.tmp`) and renames
 *   when done: every visible name that matches the globs is complete. Hidden names never match.
 * - `marker`: `claims.835` is complete once `claims.835.done` (or `claims.done`) is listed too.
 * - `stable`: once size and modification time are what the previous poll saw, and the file is at
 *   least `minAge` old (a sender writing slowly keeps changing one of them).
 */
import { minimatch } from 'minimatch';

export interface ListedFile {
  name: string;
  size: number;
  mtimeMs: number;
}

export interface PickupRules {
  globs: readonly string[];
  mode: 'temp-name' | 'marker' | 'stable';
  tempSuffixes: readonly string[];
  markerSuffixes: readonly string[];
  minAgeMs: number;
}

/** What a `stable` pickup remembers of the previous poll: size and time by name. */
export type PreviousListing = ReadonlyMap<string, { size: number; mtimeMs: number }>;

export interface PickupDecision {
  /** Complete files, oldest first (then by name). */
  ready: ListedFile[];
  /** The marker file of each ready file (`marker` mode), to delete once the file is done. */
  markers: ReadonlyMap<string, string>;
  /** This listing, for the next poll's `stable` comparison. */
  seen: Map<string, { size: number; mtimeMs: number }>;
}

function matches(name: string, rules: PickupRules): boolean {
  if (name.startsWith('.')) return false;
  if (rules.tempSuffixes.some((s) => name.endsWith(s))) return false;
  if (rules.mode === 'marker' && rules.markerSuffixes.some((s) => name.endsWith(s))) return false;
  return rules.globs.some((g) => minimatch(name, g, { dot: false, nocase: false }));
}

export function pickReadyFiles(listing: readonly ListedFile[], rules: PickupRules, now: number, previous: PreviousListing = new Map()): PickupDecision {
  const names = new Set(listing.map((f) => f.name));
  const seen = new Map<string, { size: number; mtimeMs: number }>();
  const markers = new Map<string, string>();
  const ready: ListedFile[] = [];
  for (const file of listing) {
    if (!matches(file.name, rules)) continue;
    seen.set(file.name, { size: file.size, mtimeMs: file.mtimeMs });
    if (rules.mode === 'marker') {
      const stem = file.name.includes('.') ? file.name.slice(0, file.name.lastIndexOf('.')) : file.name;
      const marker = rules.markerSuffixes.flatMap((s) => [file.name + s, stem + s]).find((m) => names.has(m));
      if (!marker) continue;
      markers.set(file.name, marker);
    } else if (rules.mode === 'stable') {
      const before = previous.get(file.name);
      if (!before || before.size !== file.size || before.mtimeMs !== file.mtimeMs) continue;
      if (now - file.mtimeMs < rules.minAgeMs) continue;
    }
    ready.push(file);
  }
  ready.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { ready, markers, seen };
}
