-- SPDX-License-Identifier: Apache-2.0
-- 0002 — a request of a batched destination is stored once (batch_attempts), not once per item:
-- each item's attempt row keeps its own element of the body and points at the batch's row, which
-- holds the request line and headers, the answer and the timing. Before, every item stored the
-- whole request and answer: 100 items × the 100-item body per attempt, and a message's history
-- showed every other patient of its batch. See docs/design/0004-delivery.md § Batching.

CREATE TABLE batch_attempts (
  id              TEXT    PRIMARY KEY,    -- a UUID per attempt of a batch
  batch_key       TEXT    NOT NULL,       -- the batch request's Idempotency-Key
  size            INTEGER NOT NULL,
  started_at      INTEGER NOT NULL,
  duration_ms     REAL    NOT NULL,
  request         TEXT    NOT NULL,       -- JSON {method, url, headers}; the body is the items'
  response_status INTEGER,
  response_body   TEXT,
  error_code      TEXT,
  error_detail    TEXT,
  outcome         TEXT    NOT NULL,
  next_attempt_at INTEGER
);

ALTER TABLE attempts ADD COLUMN batch_attempt_id TEXT;  -- batch_attempts.id, for an item of a batch
-- A whole batch is read by its attempt id (an operator's route); single requests stay out of it.
CREATE INDEX attempts_batch_attempt_id ON attempts (batch_attempt_id) WHERE batch_attempt_id IS NOT NULL;
