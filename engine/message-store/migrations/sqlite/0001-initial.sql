-- SPDX-License-Identifier: Apache-2.0
-- 0001 — the initial schema of the SQLite message store. Append-only: never edit a migration
-- that has shipped; add the next number instead. Times are epoch milliseconds (INTEGER).
-- See docs/design/0003-message-store.md § Schema.

-- seq is the rowid: rows are stored in arrival order and seq orders and pages every list.
-- AUTOINCREMENT so a seq is never handed out twice, even after the newest rows are pruned.
CREATE TABLE messages (
  seq                INTEGER PRIMARY KEY AUTOINCREMENT,
  id                 TEXT    NOT NULL UNIQUE,
  channel            TEXT    NOT NULL,
  received_at        INTEGER NOT NULL,
  raw                BLOB    NOT NULL,
  encoding           TEXT    NOT NULL,
  source             TEXT,
  control_id         TEXT,
  sender             TEXT,
  message_type       TEXT,
  patient_id         TEXT,
  visit_id           TEXT,
  facility           TEXT,
  order_key          TEXT    NOT NULL,
  state              TEXT    NOT NULL,
  -- 1 when stored as RECEIVED at ingest; a message rejected at ingest (ERROR) is never the
  -- original of a dedupe, since its sender was told to send it again.
  accepted           INTEGER NOT NULL,
  error_code         TEXT,
  error_detail       TEXT,
  exception_category TEXT,
  exception          TEXT,     -- JSON
  filter_reason      TEXT,
  canonical          TEXT,     -- JSON
  updated_at         INTEGER NOT NULL
);

-- Searches are newest first, so each search index ends in seq.
CREATE INDEX messages_control_id    ON messages (control_id, seq);
CREATE INDEX messages_patient_id    ON messages (patient_id, seq);
CREATE INDEX messages_visit_id      ON messages (visit_id, seq);
CREATE INDEX messages_message_type  ON messages (message_type, seq);
CREATE INDEX messages_channel_state ON messages (channel, state, seq);
CREATE INDEX messages_received_at   ON messages (received_at);
CREATE INDEX messages_dedupe        ON messages (channel, sender, control_id, received_at) WHERE accepted = 1;
CREATE INDEX messages_pending       ON messages (seq) WHERE state = 'RECEIVED';

CREATE TABLE deliveries (
  id                TEXT    PRIMARY KEY,  -- messageId:destination:outputIndex, the Idempotency-Key
  message_id        TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  seq               INTEGER NOT NULL,     -- the message's seq: deliveries are recovered in this order
  channel           TEXT    NOT NULL,
  destination       TEXT    NOT NULL,
  output_index      INTEGER NOT NULL,
  order_key         TEXT    NOT NULL,
  payload           TEXT    NOT NULL,     -- JSON
  state             TEXT    NOT NULL,
  attempts          INTEGER NOT NULL,
  next_attempt_at   INTEGER,
  last_error_code   TEXT,
  last_error_detail TEXT,
  updated_at        INTEGER NOT NULL
);
CREATE INDEX deliveries_message_id ON deliveries (message_id);
CREATE INDEX deliveries_state      ON deliveries (state, seq);

CREATE TABLE attempts (
  id              INTEGER PRIMARY KEY,
  delivery_id     TEXT    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  n               INTEGER NOT NULL,       -- attempt number since the delivery was (re)queued
  started_at      INTEGER NOT NULL,
  duration_ms     REAL    NOT NULL,
  request         TEXT    NOT NULL,       -- JSON {method, url, headers, body}; credentials redacted
  response_status INTEGER,
  response_body   TEXT,
  error_code      TEXT,
  error_detail    TEXT,
  outcome         TEXT    NOT NULL,
  next_attempt_at INTEGER
);
CREATE INDEX attempts_delivery_id ON attempts (delivery_id, id);

CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  message_id  TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  at          INTEGER NOT NULL,
  event       TEXT    NOT NULL,
  destination TEXT,
  detail      TEXT
);
CREATE INDEX events_message_id ON events (message_id, id);
