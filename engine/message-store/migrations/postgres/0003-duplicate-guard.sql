-- SPDX-License-Identifier: Apache-2.0
-- 0003 — the guard of a receive batch written in one round trip (postgres-batch.ts,
-- `duplicateGuard`): a batch of receives is sent with its writes and COMMIT at once, on the bet
-- that none of its messages is a resend of one already stored; this function, called for a
-- stored original, fails the transaction, and the store writes the batch again the careful way
-- (dedupe lookup first). A function, because an error raised by a constant expression would be
-- raised when the statement is planned, whether or not a row needs it.

CREATE FUNCTION osprey_duplicate_found() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'OS001', MESSAGE = 'a message of this receive batch was stored before (a resend): write it with its dedupe lookup';
END
$$;
