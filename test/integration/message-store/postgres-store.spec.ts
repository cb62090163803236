// SPDX-License-Identifier: Apache-2.0
/**
 * Runs the conformance suite on PostgreSQL (127.0.0.1:5432, user postgres, trust auth, database
 * `test`, else `postgres`; OSPREY_TEST_POSTGRES_URL overrides). Every test gets its own schema,
 * all dropped at the end. Without a reachable server the tests are skipped with the reason
 * printed, unless OSPREY_REQUIRE_SERVICES=1, which makes that a failure.
 */
import { expect } from 'chai';
import pg from 'pg';
import { PostgresStore } from '../../../engine/message-store/postgres-store.ts';
import { messageStoreSuite } from './message-store.suite.ts';

const CANDIDATES = process.env.OSPREY_TEST_POSTGRES_URL
  ? [process.env.OSPREY_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/postgres'];

async function reachable(): Promise<{ url: string } | { reason: string }> {
  const reasons: string[] = [];
  for (const url of CANDIDATES) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { url };
    } catch (err) {
      reasons.push(`${url.replace(/\/\/[^@]*@/, '//')}: ${(err as Error).message}`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  return { reason: reasons.join('; ') };
}

describe('PostgresStore', function () {
  let url = '';
  const prefix = `osprey_test_${process.pid}_${Date.now().toString(36)}`;
  const schemas: string[] = [];

  before(async function () {
    const found = await reachable();
    if ('reason' in found) {
      if (process.env.OSPREY_REQUIRE_SERVICES === '1') throw new Error(`PostgreSQL is required (OSPREY_REQUIRE_SERVICES=1) but unreachable: ${found.reason}`);
      console.log(`    skipped: PostgreSQL unreachable (${found.reason})`);
      this.skip();
    }
    url = found.url;
  });

  after(async () => {
    if (!url || schemas.length === 0) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    } finally {
      await client.end();
    }
  });

  describe('conformance', () => {
    messageStoreSuite(() => ({
      newStorage: async () => {
        const schema = `${prefix}_${schemas.length + 1}`;
        schemas.push(schema);
        return schema;
      },
      create: (schema) => new PostgresStore({ connectionString: url, schema, poolSize: 4 }),
      sabotage: async (schema) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`DROP TABLE "${schema}".events`);
        } finally {
          await client.end();
        }
      },
    }));
  });

  describe('options', () => {
    it('refuses a schema name that is not a plain identifier', () => {
      expect(() => new PostgresStore({ connectionString: 'postgres://x', schema: 'a"; DROP TABLE x; --' })).to.throw(TypeError);
    });

    it('records the migrations once, even when instances open at the same moment', async () => {
      const schema = `${prefix}_migrations`;
      schemas.push(schema);
      const stores = Array.from({ length: 4 }, () => new PostgresStore({ connectionString: url, schema, poolSize: 1 }));
      try {
        await Promise.all(stores.map((s) => s.open()));
      } finally {
        for (const s of stores) await s.close();
      }
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`);
        expect(rows).to.deep.equal([{ version: 1, name: '0001-initial' }]);
      } finally {
        await client.end();
      }
    });
  });
});
