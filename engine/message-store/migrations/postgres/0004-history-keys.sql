-- SPDX-License-Identifier: Apache-2.0
-- 0004 — events and attempts are only ever read by their parent (a message's history, a delivery's
-- attempts, in order), so each has one index: its primary key starts with the parent's id. Before,
-- each had a primary key on its own serial id that nothing read, and a second index for the parent:
-- two index entries per row, and a message writes ~9 events and 1.5 attempts (~20% of the index
-- entries a message costs). See docs/design/0003-message-store.md § Schema.

ALTER TABLE events DROP CONSTRAINT events_pkey;
DROP INDEX events_message_id;
ALTER TABLE events ADD PRIMARY KEY (message_id, id);

ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
DROP INDEX attempts_delivery_id;
ALTER TABLE attempts ADD PRIMARY KEY (delivery_id, id);
