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
import { LookupTables } from './lookup-tables.ts';
import type { PipelineResources } from './pipeline.ts';

export interface LoadedProject {
  /** Channels without errors. */
  channels: ChannelRuntime[];
  /** Every problem found in channel files; each error excluded only its own channel. */
  issues: LintIssue[];
  contracts: ContractRegistry;
  lookups: LookupTables;
  resourcesFor(channel: ChannelRuntime): PipelineResources;
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
  return {
    channels: channels.map((c) => c.runtime),
    issues,
    contracts,
    lookups,
    resourcesFor: (channel) => ({ transforms: channel.transforms, lookups, contracts }),
  };
}
