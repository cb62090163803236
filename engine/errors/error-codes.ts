// SPDX-License-Identifier: Apache-2.0
/**
 * Every error Osprey reports has a stable code `OSPREY_ERR_<AREA>_<PROBLEM>` and a class that
 * decides what happens next: `transient` (retry), `ambiguous` (retry only when the request is
 * idempotent — ours always carry an Idempotency-Key, so they are retried), `permanent` (stop:
 * error state or dead letter). Codes are never reused or renamed; add new ones at the end of their
 * area. `docs/reference/error-codes.md` lists them (kept in step by a unit test).
 */
export const ErrorClass = { transient: 'transient', ambiguous: 'ambiguous', permanent: 'permanent' } as const;
export type ErrorClass = (typeof ErrorClass)[keyof typeof ErrorClass];

interface ErrorCodeSpec {
  readonly class: ErrorClass;
  readonly description: string;
}

export const ErrorCodes = {
  // HL7 v2 parsing and validation
  OSPREY_ERR_HL7_EMPTY: { class: 'permanent', description: 'The message has no content.' },
  OSPREY_ERR_HL7_NO_MSH: { class: 'permanent', description: 'The message does not start with an MSH segment.' },
  OSPREY_ERR_HL7_BAD_MSH: { class: 'permanent', description: 'MSH is too short to carry the field separator and encoding characters.' },
  OSPREY_ERR_HL7_BAD_DELIMITERS: { class: 'permanent', description: 'MSH-1/MSH-2 delimiters are missing, repeated or not distinct.' },
  OSPREY_ERR_HL7_BAD_SEGMENT: { class: 'permanent', description: 'A segment id is not three upper-case letters or digits.' },
  OSPREY_ERR_HL7_MISSING_FIELD: { class: 'permanent', description: 'A required field (MSH-9, MSH-10, MSH-12 …) is empty.' },
  OSPREY_ERR_HL7_UNSUPPORTED_TYPE: { class: 'permanent', description: 'The message type is not in the channel’s accept list.' },
  OSPREY_ERR_HL7_BAD_PATH: { class: 'permanent', description: 'An HL7 path such as PID-3[2].1 is not well formed.' },
  OSPREY_ERR_HL7_CHARSET: { class: 'permanent', description: 'The bytes cannot be decoded with the MSH-18 character set.' },
  OSPREY_ERR_HL7_STRUCTURE: { class: 'permanent', description: 'The message structure does not match the HL7 definition of its type.' },
  OSPREY_ERR_HL7_UNKNOWN_VERSION: { class: 'permanent', description: 'MSH-12 is not an HL7 v2 version Osprey knows (2.1 … 2.9).' },
  OSPREY_ERR_HL7_BATCH_COUNT: { class: 'permanent', description: 'A batch trailer (BTS-1, FTS-1) declares a count that differs from what the file holds, or lines lie outside any message.' },
  OSPREY_ERR_HL7_BATCH_TRAILER: { class: 'permanent', description: 'An HL7 batch file opens an envelope (FHS, BHS) without its trailer (FTS, BTS), or a trailer has no header: a truncated or damaged file.' },
  // X12 (835 remittances)
  OSPREY_ERR_X12_NO_ISA: { class: 'permanent', description: 'The text does not start with an ISA segment (a UTF-8 BOM and white space before it are allowed).' },
  OSPREY_ERR_X12_BAD_ISA: { class: 'permanent', description: 'The ISA segment is too short or its delimiters (element, component, segment terminator) are missing or not distinct.' },
  OSPREY_ERR_X12_BAD_PATH: { class: 'permanent', description: 'An X12 path such as CAS[2]-3 or SVC-1.2 is not well formed.' },
  OSPREY_ERR_X12_ENVELOPE: { class: 'permanent', description: 'The interchange envelope is broken: control numbers (ISA13/IEA02, GS06/GE02, ST02/SE02) or counts (IEA01, GE01, SE01) disagree, a trailer is missing, or the file is truncated.' },
  OSPREY_ERR_X12_TOO_LARGE: { class: 'permanent', description: 'A segment or a claim payment is larger than the splitter allows (a file with no segment terminators, or a runaway loop); nothing is held beyond the limit.' },
  // CSV records (batch files)
  OSPREY_ERR_CSV_MALFORMED: { class: 'permanent', description: 'The CSV text cannot be parsed at a line (an unclosed or stray quote); the rows it swallowed are unreadable.' },
  OSPREY_ERR_CSV_HEADER: { class: 'permanent', description: 'The CSV header is missing, repeats a column, or lacks a required or key column of the channel’s record schema.' },
  OSPREY_ERR_CSV_COLUMN_COUNT: { class: 'permanent', description: 'A CSV row has more or fewer fields than the header.' },
  OSPREY_ERR_CSV_ROW_INVALID: { class: 'permanent', description: 'A CSV row fails the record schema: a required column is empty or a value is not of its column’s type (the error names the line and column).' },
  OSPREY_ERR_CSV_TRAILER: { class: 'permanent', description: 'The CSV trailer is missing, not the last line, or its record count or total differs from the rows of the file.' },
  OSPREY_ERR_CSV_BAD_RECORD: { class: 'permanent', description: 'The stored text is not a CSV record as Osprey stores one (a JSON object of columns and values).' },
  // MLLP transport
  OSPREY_ERR_MLLP_FRAME_TOO_LARGE: { class: 'permanent', description: 'A frame exceeded the listener’s maxMessageSize.' },
  OSPREY_ERR_MLLP_GARBAGE: { class: 'permanent', description: 'Bytes outside an MLLP frame were discarded; the first such bytes of a connection are stored as one ERROR message.' },
  OSPREY_ERR_MLLP_IDLE_TIMEOUT: { class: 'transient', description: 'The connection was idle (or stalled mid-frame) longer than idleTimeout.' },
  OSPREY_ERR_MLLP_HANDLER_FAILED: { class: 'transient', description: 'The engine failed while handling the message; the sender got AE and should resend.' },
  OSPREY_ERR_MLLP_SENDER_NOT_ALLOWED: { class: 'permanent', description: 'A connection came from an address that is not in allowFrom; it was closed.' },
  OSPREY_ERR_MLLP_ACKS_UNREAD: { class: 'transient', description: 'The sender left its ACKs unread (more than maxUnreadAckBytes, or for idleTimeout); it was disconnected.' },
  OSPREY_ERR_MLLP_TOO_MANY_CONNECTIONS: { class: 'transient', description: 'maxConnections was reached; the new connection was closed.' },
  OSPREY_ERR_MLLP_ACK_INVALID: { class: 'permanent', description: 'The peer answered with something that is not an HL7 ACK.' },
  // Ingest and store
  OSPREY_ERR_STORE_UNAVAILABLE: { class: 'transient', description: 'The message store could not commit; the sender gets AE and should resend.' },
  OSPREY_ERR_STORE_NOT_FOUND: { class: 'permanent', description: 'No message with that id.' },
  // Channel files and configuration
  OSPREY_ERR_CHANNEL_YAML: { class: 'permanent', description: 'The channel file is not valid YAML.' },
  OSPREY_ERR_CHANNEL_SCHEMA: { class: 'permanent', description: 'A field is missing, unknown or of the wrong type.' },
  OSPREY_ERR_CHANNEL_NAME: { class: 'permanent', description: 'metadata.name does not match the file name.' },
  OSPREY_ERR_CHANNEL_DUPLICATE: { class: 'permanent', description: 'Two channels share a name or an inbound port.' },
  OSPREY_ERR_CHANNEL_ENV: { class: 'permanent', description: 'A ${VAR} is not set in the environment and has no default.' },
  OSPREY_ERR_CHANNEL_LITERAL_SECRET: { class: 'permanent', description: 'A secret (password, clientSecret, token, key) is written literally instead of ${VAR}.' },
  OSPREY_ERR_CHANNEL_TRANSFORM: { class: 'permanent', description: 'A transform module is missing or does not export a transform.' },
  OSPREY_ERR_CHANNEL_LOOKUP: { class: 'permanent', description: 'A lookup table is missing, or its file cannot be read or parsed (a table loaded before keeps its last good version, and the channels using it show a warning).' },
  OSPREY_ERR_CHANNEL_CONTRACT: { class: 'permanent', description: 'A destination names a contract that does not exist.' },
  OSPREY_ERR_CHANNEL_RATE_LIMIT: { class: 'permanent', description: 'A destination names a rate limit that config does not define.' },
  OSPREY_ERR_CONFIG_INVALID: { class: 'permanent', description: 'The engine configuration file is invalid.' },
  OSPREY_ERR_CHANNEL_DESTINATION_NAME: { class: 'permanent', description: 'Two destinations of one channel share a name.' },
  OSPREY_ERR_CONFIG_ENV: { class: 'permanent', description: 'A ${VAR} in the engine configuration is not set in the environment and has no default.' },
  // Ingest
  OSPREY_ERR_INGEST_UNREADABLE: { class: 'permanent', description: 'A source handed over a record that its format could not parse, without saying why.' },
  // Pipeline
  OSPREY_ERR_PIPELINE_VALIDATION: { class: 'permanent', description: 'The message failed the channel’s validate step.' },
  OSPREY_ERR_TRANSFORM_FAILED: { class: 'permanent', description: 'The transform threw an error (a bug in the transform).' },
  OSPREY_ERR_TRANSFORM_OUTPUT_INVALID: { class: 'permanent', description: 'The transform output does not match the destination contract.' },
  OSPREY_ERR_BUSINESS_EXCEPTION: { class: 'permanent', description: 'A business rule stopped the message (unmapped department, unknown provider …); fix the lookup and replay.' },
  // Delivery
  OSPREY_ERR_DELIVERY_HTTP_TRANSIENT: { class: 'transient', description: 'The destination answered 408, 429 or 5xx (or a status listed in retryOn).' },
  OSPREY_ERR_DELIVERY_HTTP_PERMANENT: { class: 'permanent', description: 'The destination answered a 4xx that is not retried.' },
  OSPREY_ERR_DELIVERY_TIMEOUT: { class: 'ambiguous', description: 'The destination did not answer in time; it may or may not have applied the request.' },
  OSPREY_ERR_DELIVERY_NETWORK: { class: 'transient', description: 'The connection to the destination failed or was reset.' },
  OSPREY_ERR_DELIVERY_AUTH: { class: 'transient', description: 'The OAuth2 token could not be obtained.' },
  OSPREY_ERR_DELIVERY_EXHAUSTED: { class: 'permanent', description: 'The last retry attempt failed; the delivery is dead-lettered.' },
  OSPREY_ERR_DELIVERY_MAX_ELAPSED: { class: 'permanent', description: 'The retry window (maxElapsed, from the first attempt) closed before the next attempt; the delivery is dead-lettered.' },
  OSPREY_ERR_DELIVERY_BAD_PAYLOAD: { class: 'permanent', description: 'The payload cannot be serialised as JSON (a bug in the transform); nothing was sent.' },
  // Message bus
  OSPREY_ERR_BUS_PUBLISH_TIMEOUT: { class: 'transient', description: 'No broker confirm (or no connection) within publishTimeout; the store still has the item and it is published again.' },
  OSPREY_ERR_BUS_PUBLISH_REJECTED: { class: 'transient', description: 'The broker nacked the publish or returned it as unroutable.' },
  OSPREY_ERR_BUS_STOPPED: { class: 'transient', description: 'The bus was stopped before the item could be published or handled.' },
  OSPREY_ERR_BUS_TOPOLOGY: { class: 'permanent', description: 'The broker refused the topology (a queue exists with other arguments).' },
  OSPREY_ERR_BUS_DEAD_LETTERED: {
    class: 'permanent',
    description: "The bus gave up on the work item after its delivery limit (its handler kept failing, or the broker's consumer_timeout kept closing its channel); fix the cause and replay.",
  },
  // Management API
  OSPREY_ERR_API_NOT_FOUND: { class: 'permanent', description: 'The resource does not exist.' },
  OSPREY_ERR_API_BAD_REQUEST: { class: 'permanent', description: 'A query parameter or body is invalid.' },
  OSPREY_ERR_API_NOT_REPLAYABLE: { class: 'permanent', description: 'The message is in a state that cannot be replayed.' },
  OSPREY_ERR_API_UNAUTHORIZED: { class: 'permanent', description: 'The request to /api/ carries no valid bearer token (http.apiToken is set).' },
  // SFTP (source and destination)
  OSPREY_ERR_SFTP_UNREACHABLE: { class: 'transient', description: 'The SFTP server could not be reached: connection refused, address not found, or no SSH handshake within the connect timeout.' },
  OSPREY_ERR_SFTP_CONNECTION_LOST: { class: 'transient', description: 'The SFTP connection was reset or closed by the server (or stopped answering keepalives) during an operation.' },
  OSPREY_ERR_SFTP_HOST_KEY: { class: 'permanent', description: 'The SFTP server presented a host key other than the pinned fingerprint (hostKey); the error names both. Nothing was sent.' },
  OSPREY_ERR_SFTP_AUTH: { class: 'permanent', description: 'The SFTP server refused the user, key or password.' },
  OSPREY_ERR_SFTP_BAD_KEY: { class: 'permanent', description: 'The private key cannot be read or parsed (wrong path, passphrase, format), or hostKey is not a SHA256:… fingerprint.' },
  OSPREY_ERR_SFTP_PERMISSION_DENIED: { class: 'permanent', description: 'The SFTP server denied the operation on a path (permissions of the remote user).' },
  OSPREY_ERR_SFTP_NO_SUCH_FILE: { class: 'permanent', description: 'A remote file or directory does not exist.' },
  OSPREY_ERR_SFTP_FAILURE: { class: 'transient', description: 'The SFTP server reported a generic failure (a full disk, a path in use, an operation it does not support).' },
  OSPREY_ERR_SFTP_FILE_GONE: { class: 'permanent', description: 'A file the SFTP source had begun left the inbox before it was finished; the records stored before stand.' },
  OSPREY_ERR_SFTP_FILE_CHANGED: { class: 'permanent', description: 'A file the SFTP source had begun was replaced on the server before it was finished; the records stored before stand and the new content is taken as a new version.' },
  OSPREY_ERR_SFTP_FILE_EXISTS: { class: 'permanent', description: 'The SFTP destination\'s file name is taken by a file with other content and ifExists is fail; nothing was overwritten.' },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error with a stable code; `detail` is safe to log (it never carries message content). */
export class OspreyError extends Error {
  readonly code: ErrorCode;
  readonly errorClass: ErrorClass;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OspreyError';
    this.code = code;
    this.errorClass = ErrorCodes[code].class;
  }
}

export function isOspreyError(err: unknown): err is OspreyError {
  return err instanceof OspreyError;
}
