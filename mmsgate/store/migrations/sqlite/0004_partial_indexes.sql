-- depends: 0003_delivery
-- Indexes that hold only the rows their queries look for: a job is in jobs_due while it waits and in
-- jobs_lease while it runs; a message is in messages_carrier once a carrier has given it an id. So
-- accepting a message writes no entries that nothing reads, and finished jobs do not pile up in them.
-- messages_account served no query: every lookup of a message goes by its tracking-id.

DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs(run_at, id) WHERE state = 'queued';
DROP INDEX jobs_lease;
CREATE INDEX jobs_lease ON jobs(lease_until, id) WHERE state = 'running';
DROP INDEX messages_carrier;
CREATE INDEX messages_carrier ON messages(carrier, carrier_message_id) WHERE carrier_message_id IS NOT NULL;
DROP INDEX messages_account;
