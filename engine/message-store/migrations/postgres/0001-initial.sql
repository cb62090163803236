-- SPDX-License-Identifier: Apache-2.0
-- 0001 — the initial schema of the PostgreSQL message store. Append-only: never edit a migration
-- that has shipped; add the next number instead. Runs with search_path set to the store's schema.
-- Times are epoch milliseconds (bigint), as in the SQLite store, so both share one row mapping.
-- JSON columns are json, not jsonb: a payload is sent byte for byte as it was built (jsonb would
-- reorder its keys). See docs/design/0003-message-store.md § Schema.

CREATE TABLE messages (
  id                 text    PRIMARY KEY,
  seq                bigserial NOT NULL UNIQUE,
  channel            text    NOT NULL,
  received_at        bigint  NOT NULL,
  raw                bytea   NOT NULL,
  encoding           text    NOT NULL,
  source             text,
  control_id         text,
  sender             text,
  message_type       text,
  patient_id         text,
  visit_id           text,
  facility           text,
  order_key          text    NOT NULL,
  state              text    NOT NULL,
  -- true when stored as RECEIVED at ingest; a message rejected at ingest (ERROR) is never the
  -- original of a dedupe, since its sender was told to send it again.
  accepted           boolean NOT NULL,
  error_code         text,
  error_detail       text,
  exception_category text,
  exception          json,
  filter_reason      text,
  canonical          json,
  updated_at         bigint  NOT NULL
);

-- Searches are newest first, so each search index ends in seq.
CREATE INDEX messages_control_id    ON messages (control_id, seq);
CREATE INDEX messages_patient_id    ON messages (patient_id, seq);
CREATE INDEX messages_visit_id      ON messages (visit_id, seq);
CREATE INDEX messages_message_type  ON messages (message_type, seq);
CREATE INDEX messages_channel_state ON messages (channel, state, seq);
CREATE INDEX messages_received_at   ON messages (received_at);
CREATE INDEX messages_dedupe        ON messages (channel, sender, control_id, received_at) WHERE accepted;
CREATE INDEX messages_pending       ON messages (seq) WHERE state = 'RECEIVED';

CREATE TABLE deliveries (
  id                text    PRIMARY KEY,  -- messageId:destination:outputIndex, the Idempotency-Key
  message_id        text    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  seq               bigint  NOT NULL,     -- the message's seq: deliveries are recovered in this order
  channel           text    NOT NULL,
  destination       text    NOT NULL,
  output_index      integer NOT NULL,
  order_key         text    NOT NULL,
  payload           json    NOT NULL,
  state             text    NOT NULL,
  attempts          integer NOT NULL,
  next_attempt_at   bigint,
  last_error_code   text,
  last_error_detail text,
  updated_at        bigint  NOT NULL
);
CREATE INDEX deliveries_message_id ON deliveries (message_id);
CREATE INDEX deliveries_state      ON deliveries (state, seq);

CREATE TABLE attempts (
  id              bigserial PRIMARY KEY,
  delivery_id     text    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  n               integer NOT NULL,       -- attempt number since the delivery was (re)queued
  started_at      bigint  NOT NULL,
  duration_ms     double precision NOT NULL,
  request         json    NOT NULL,       -- {method, url, headers, body}; credentials redacted
  response_status integer,
  response_body   text,
  error_code      text,
  error_detail    text,
  outcome         text    NOT NULL,
  next_attempt_at bigint
);
CREATE INDEX attempts_delivery_id ON attempts (delivery_id, id);

CREATE TABLE events (
  id          bigserial PRIMARY KEY,
  message_id  text    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  at          bigint  NOT NULL,
  event       text    NOT NULL,
  destination text,
  detail      text
);
CREATE INDEX events_message_id ON events (message_id, id);
