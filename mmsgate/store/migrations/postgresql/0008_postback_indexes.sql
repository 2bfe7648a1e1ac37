-- depends: 0007_console
-- Postbacks, like jobs (0004), are indexed only while a claim may look for them: queued ones by when they
-- are due, running ones by when their lease ends. Delivered and failed postbacks, nearly all of the table,
-- no longer stay in an index that every state change rewrote.

DROP INDEX postbacks_due;
CREATE INDEX postbacks_due ON postbacks(run_at, id) WHERE state = 'queued';
CREATE INDEX postbacks_lease ON postbacks(lease_until, id) WHERE state = 'running';
