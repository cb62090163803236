-- SPDX-License-Identifier: Apache-2.0
-- 0002 — drop the foreign keys of deliveries, attempts and events. Every child row is inserted by
-- the store's unit of work for a message it holds locked or inserts in the same transaction, so
-- the constraint never caught anything; checking it cost ~20% of PostgreSQL's CPU per message
-- (one KEY SHARE lock on the parent row per child row, a MultiXact when the transaction already
-- holds the parent's NO KEY UPDATE lock). The one delete that cascaded (a replay dropping a
-- delivery's row, and with it its attempts) is done by the store itself.
-- See docs/design/0003-message-store.md § "No foreign keys on PostgreSQL".

ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_message_id_fkey;
ALTER TABLE attempts   DROP CONSTRAINT IF EXISTS attempts_delivery_id_fkey;
ALTER TABLE events     DROP CONSTRAINT IF EXISTS events_message_id_fkey;
