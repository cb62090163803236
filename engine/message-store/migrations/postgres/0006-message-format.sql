-- SPDX-License-Identifier: Apache-2.0
-- 0006 — messages are no longer only HL7 v2: each has a format (hl7v2, x12, csv-record …) that says
-- how its raw bytes are read, and a record of a file keeps its lineage (file, content hash, record
-- index, envelope control numbers). file_hash + record_index is the per-record checkpoint of a file
-- source: the record's row is committed with the record, so a poller resuming after a crash skips
-- exactly the records already stored. See docs/design/0011-message-formats.md.

ALTER TABLE messages ADD COLUMN format text NOT NULL DEFAULT 'hl7v2';
ALTER TABLE messages ADD COLUMN lineage json;
ALTER TABLE messages ADD COLUMN file_hash text;
ALTER TABLE messages ADD COLUMN record_index integer;

CREATE INDEX messages_file_records ON messages (channel, file_hash, record_index) WHERE file_hash IS NOT NULL;
