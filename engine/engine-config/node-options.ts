// SPDX-License-Identifier: Apache-2.0
/**
 * The V8 heap settings the engine process runs with: `npm start`, the `osprey` command's shebang,
 * and the tests and benchmarks that start the engine as a child process all pass these (a unit test
 * keeps them in step).
 *
 * Why: on a machine with much memory V8 sizes the heap for throughput, not footprint. Under a
 * sustained stream (an 835 of 100,000 claim payments taken at 2,000+ claims/s) the engine's heap
 * grew to 3–5× what was alive (140–280 MB for 50–60 MB live) and its RSS past 350 MB. An 8 MB
 * semi-space keeps short-lived objects (a record parsed, stored, forgotten) in a small young
 * generation, and an explicit old-generation limit makes V8 collect before it grows: the same
 * stream peaks at 255–275 MB RSS, at the same rate, and the MLLP benchmark's CPU per message is
 * unchanged (a 4 MB semi-space saved ~25 MB more but cost 6% of the MLLP throughput in scavenges;
 * docs/design/0013-file-sources.md § Memory). The
 * 1 GB limit is far above what the engine keeps (lookup tables, a page of recovered work); a
 * deployment with larger lookups raises it on its own command line.
 */
export const ENGINE_NODE_OPTIONS = ['--max-semi-space-size=8', '--max-old-space-size=1024'] as const;
