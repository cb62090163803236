// SPDX-License-Identifier: Apache-2.0
/**
 * PostgreSQL and RabbitMQ of a test's own, for the fault tests that stop and start them: a
 * throwaway PostgreSQL (test/helpers/throwaway-postgres.ts) and a one-node RabbitMQ of the test's
 * own (test/helpers/rabbitmq-cluster.ts), both on free ports of 127.0.0.1. The machine's services
 * are never restarted by a test; a test that needs only one of its own may use the machine's other
 * service, with its own schema or prefix as every test does.
 */
import { rabbitClusterUnavailable, startRabbitCluster, stopRabbitClusters, type RabbitCluster, type RabbitNode } from './rabbitmq-cluster.ts';
import type { Services } from './production-services.ts';
import { startThrowawayPostgres, stopThrowawayPostgreses, throwawayPostgresUnavailable, type ThrowawayPostgres } from './throwaway-postgres.ts';

export interface OwnServicesRequest {
  /** A PostgreSQL of the test's own (else `machine`'s). */
  postgres?: boolean;
  /** A RabbitMQ node of the test's own (else `machine`'s). */
  rabbitmq?: boolean;
}

export interface OwnServices {
  /** What the engine instances are given: the test's own services where asked, the machine's otherwise. */
  services: Services;
  postgres?: ThrowawayPostgres;
  rabbitmq?: RabbitNode;
  /** Stops what was started (each waits for its processes to exit), then removes their files. */
  stop(): Promise<void>;
}

/** Why the requested services of the test's own cannot run here, or undefined when they can. */
export function ownServicesUnavailable(request: OwnServicesRequest): string | undefined {
  const reasons = [request.postgres ? throwawayPostgresUnavailable() : undefined, request.rabbitmq ? rabbitClusterUnavailable() : undefined].filter(Boolean);
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

/**
 * Starts the requested services (in parallel); the others come from `machine`, which must then be
 * given. If one fails to start, the other is stopped before the error is passed on.
 */
export async function startOwnServices(request: OwnServicesRequest, machine?: Services): Promise<OwnServices> {
  if ((!request.postgres || !request.rabbitmq) && !machine) throw new Error('the machine services are needed for what the test does not start itself');
  const [pgResult, rabbitResult] = await Promise.allSettled([
    request.postgres ? startThrowawayPostgres() : Promise.resolve(undefined),
    request.rabbitmq ? startRabbitCluster(1) : Promise.resolve(undefined),
  ]);
  const postgres = pgResult.status === 'fulfilled' ? pgResult.value : undefined;
  const rabbit: RabbitCluster | undefined = rabbitResult.status === 'fulfilled' ? rabbitResult.value : undefined;
  const stop = async (): Promise<void> => {
    await Promise.all([postgres?.stop(), rabbit?.stop()]);
  };
  const failed = [pgResult, rabbitResult].find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const node = rabbit?.nodes[0];
  return {
    services: {
      databaseUrl: postgres?.url ?? machine!.databaseUrl,
      rabbitmqUrl: node?.url ?? machine!.rabbitmqUrl,
      ...(node ? { rabbitmqctl: node.ctl } : {}),
    },
    ...(postgres ? { postgres } : {}),
    ...(node ? { rabbitmq: node } : {}),
    stop,
  };
}

/**
 * Stops every service of the test's own that this process started and has not stopped, including
 * one still starting (a `before` hook that timed out never got its handle): for `after` hooks.
 */
export async function stopAllOwnServices(): Promise<void> {
  await Promise.all([stopThrowawayPostgreses(), stopRabbitClusters()]);
}
