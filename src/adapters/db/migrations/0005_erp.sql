-- ERP integration: inbound message deduplication (RELIABILITY.md rule 3: the B2MML BODID or the
-- ERP's document id, stored in the same transaction as the effect) and delivery bookkeeping.

CREATE TABLE erp_inbound_messages (
  message_id    text PRIMARY KEY CHECK (length(message_id) BETWEEN 1 AND 200),
  source        text NOT NULL,             -- 'b2mml', 'rest', 'file:<name>'
  verb          text NOT NULL,             -- e.g. 'ProcessProductionSchedule'
  request_hash  text NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  result        jsonb NOT NULL
);

-- One row per delivery attempt of an outbox event: when, what answer, how long.
CREATE TABLE outbox_deliveries (
  id            bigserial PRIMARY KEY,
  event_id      bigint NOT NULL REFERENCES outbox_events (id),
  attempt       integer NOT NULL,
  at            timestamptz NOT NULL DEFAULT now(),
  outcome       text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dead')),
  http_status   integer,
  error         text,
  duration_ms   integer
);
CREATE INDEX outbox_deliveries_event_idx ON outbox_deliveries (event_id);
