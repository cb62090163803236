// SPDX-License-Identifier: Apache-2.0
/**
 * Picks the store and the bus from the engine configuration: SQLite + local bus on the embedded
 * default, PostgreSQL + RabbitMQ in production mode. Both pairs share their contracts and tests.
 */
import { resolve } from 'node:path';
import type { EngineConfig } from './engine-config/load-engine-config.ts';
import { LocalBus } from './message-bus/local-bus.ts';
import { RabbitMqBus } from './message-bus/rabbitmq-bus.ts';
import type { MessageBus } from './message-bus/message-bus.ts';
import type { MessageStore } from './message-store/message-store.ts';
import { PostgresStore } from './message-store/postgres-store.ts';
import { SqliteStore } from './message-store/sqlite-store.ts';
import type { Logger } from './observability/logger.ts';

export function createStore(config: EngineConfig['store'], projectRoot: string): MessageStore {
  switch (config.type) {
    case 'sqlite':
      return new SqliteStore({ path: resolve(projectRoot, config.path), synchronous: config.synchronous });
    case 'postgres':
      return new PostgresStore({ connectionString: config.url, schema: config.schema, poolSize: config.poolSize });
    default:
      return config satisfies never;
  }
}

export function createBus(config: EngineConfig['bus'], logger: Logger): MessageBus {
  switch (config.type) {
    case 'local':
      return new LocalBus({ logger });
    case 'rabbitmq':
      return new RabbitMqBus({ url: config.url, prefix: config.prefix, partitions: config.partitions, prefetch: config.prefetch, deliveryLimit: config.deliveryLimit, logger });
    default:
      return config satisfies never;
  }
}
