// SPDX-License-Identifier: Apache-2.0
/**
 * The REST outbound adapter (ERP, RCM): a keep-alive JSON client with authentication,
 * idempotency keys and classified results. The engine imports it from here.
 *
 * @see docs/design/0004-delivery.md
 */
export { RestClient, MAX_RESPONSE_BODY_BYTES, DEFAULT_TIMEOUT_MS, type RestClientConfig, type RestClientOptions } from './rest-client.ts';
export { createAuth, type AuthConfig, type AuthOptions, type AuthType, type RestAuth } from './auth.ts';
