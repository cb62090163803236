-- SPDX-License-Identifier: Apache-2.0
-- 0007 — the ledger of the files a file source (the SFTP poller) has taken: one row per pickup,
-- with its content hash (a re-drop of the same bytes is recognised), its version (a corrected
-- file under the same name is a new one) and its state. The records' progress is not kept here:
-- it is counted from messages (file_hash, record_index of migration 0006), whose rows commit with
-- the records themselves. See docs/design/0013-file-sources.md.

-- seq orders the lists (newest first).
CREATE TABLE inbound_files (
  seq           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id            text    NOT NULL UNIQUE,
  channel       text    NOT NULL,
  name          text    NOT NULL,
  path          text    NOT NULL,
  content_hash  text    NOT NULL,
  size          bigint  NOT NULL,
  mtime_ms      bigint  NOT NULL,
  version       integer NOT NULL,
  state         text    NOT NULL,
  records_total bigint,
  error_code    text,
  error_detail  text,
  moved_to      text,
  picked_at     bigint  NOT NULL,
  finished_at   bigint
);

CREATE INDEX inbound_files_hash    ON inbound_files (channel, content_hash, seq);
CREATE INDEX inbound_files_name    ON inbound_files (channel, name, seq);
CREATE INDEX inbound_files_channel ON inbound_files (channel, state, seq);
