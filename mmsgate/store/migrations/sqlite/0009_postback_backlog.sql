-- depends: 0008_postback_indexes
-- Postbacks given up on, by account: `mmsgate postbacks retry` and the console's postbacks page find an
-- account's failed postbacks without reading the delivered ones that fill the table. Failed postbacks are
-- few, and a row enters this index only when it fails, so the outbox's hot path writes no more than before.

CREATE INDEX postbacks_failed ON postbacks(account_id, id) WHERE state = 'failed';
