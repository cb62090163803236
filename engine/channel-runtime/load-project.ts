// SPDX-License-Identifier: Apache-2.0
/**
 * Loads what the engine and `osprey test` both need from a project: the contract registry, the
 * lookup tables and the channels (validated, with their transforms loaded). One function, so a
 * channel test exercises exactly what `npm start` runs.
 */
import { resolve } from 'node:path';
import type { EngineConfig } from '../engine-config/load-engine-config.ts';
import { loadChannels, type ChannelRuntime, type LintIssue } from './channel-loader.ts';
import { ContractRegistry } from './contracts.ts';
import { describeLookupProblem, LookupTables } from './lookup-tables.ts';
import type { PipelineResources } from './pipeline.ts';

export interface LoadedProject {
  /** Channels without errors. */
  channels: ChannelRuntime[];
  /** Every problem found in channel files; each error excluded only its own channel. */
  issues: LintIssue[];
  contracts: ContractRegistry;
  lookups: LookupTables;
  /** One set of resources per channel (the same object on every call for a channel). */
  resourcesFor(channel: ChannelRuntime): PipelineResources;
  /**
   * Problems of the lookup tables a channel uses (its `enrich` steps, and the tables its transforms
   * have read), one line each; empty when all are well.
   */
  lookupWarnings(channel: string): string[];
}

export async function loadProject(options: {
  config: EngineConfig;
  projectRoot: string;
  env: NodeJS.ProcessEnv;
  /** Overrides `config.channels.dir`. */
  channelsDir?: string;
}): Promise<LoadedProject> {
  const { config, projectRoot } = options;
  const contracts = await ContractRegistry.load(projectRoot, config.contracts.module);
  const lookupsDir = resolve(projectRoot, config.lookups.dir);
  const { channels, issues } = await loadChannels({
    dir: resolve(projectRoot, options.channelsDir ?? config.channels.dir),
    projectRoot,
    lookupsDir,
    env: options.env,
    contracts: contracts.names(),
    rateLimits: new Set(Object.keys(config.rateLimits ?? {})),
  });
  const lookups = new LookupTables(lookupsDir);
  const resources = new Map<string, PipelineResources>();
  const used = new Map<string, Set<string>>();
  return {
    channels: channels.map((c) => c.runtime),
    issues,
    contracts,
    lookups,
    resourcesFor(channel) {
      let r = resources.get(channel.name);
      if (!r) {
        // The tables a channel reads are known as it reads them (a transform may read any table).
        const tables = new Set(channel.steps.flatMap((s) => ('enrich' in s ? [s.enrich.lookup] : [])));
        used.set(channel.name, tables);
        r = {
          transforms: channel.transforms,
          lookups: {
            get: (table, key) => {
              tables.add(table);
              return lookups.get(table, key);
            },
          },
          contracts,
        };
        resources.set(channel.name, r);
      }
      return r;
    },
    lookupWarnings: (channel) => lookups.problems(used.get(channel) ?? []).map(describeLookupProblem),
  };
}
