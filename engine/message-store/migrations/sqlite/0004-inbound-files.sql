-- SPDX-License-Identifier: Apache-2.0
-- 0004 — the ledger of the files a file source (the SFTP poller) has taken: one row per pickup,
-- with its content hash (a re-drop of the same bytes is recognised), its version (a corrected
-- file under the same name is a new one) and its state. The records' progress is not kept here:
-- it is counted from messages (file_hash, record_index of migration 0003), whose rows commit with
-- the records themselves. See docs/design/0013-file-sources.md.

-- seq orders the lists (newest first); AUTOINCREMENT so a seq is never handed out twice.
CREATE TABLE inbound_files (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  id            TEXT    NOT NULL UNIQUE,
  channel       TEXT    NOT NULL,
  name          TEXT    NOT NULL,
  path          TEXT    NOT NULL,
  content_hash  TEXT    NOT NULL,
  size          INTEGER NOT NULL,
  mtime_ms      INTEGER NOT NULL,
  version       INTEGER NOT NULL,
  state         TEXT    NOT NULL,
  records_total INTEGER,
  error_code    TEXT,
  error_detail  TEXT,
  moved_to      TEXT,
  picked_at     INTEGER NOT NULL,
  finished_at   INTEGER
);

CREATE INDEX inbound_files_hash    ON inbound_files (channel, content_hash, seq);
CREATE INDEX inbound_files_name    ON inbound_files (channel, name, seq);
CREATE INDEX inbound_files_channel ON inbound_files (channel, state, seq);
