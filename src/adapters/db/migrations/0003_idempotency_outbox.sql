-- Idempotency keys for HTTP commands, and the transactional outbox (RELIABILITY.md rules 3 and 4).

-- One row per (caller, key), written in the same transaction as the effect it protects. A
-- concurrent duplicate blocks on the primary key until the first commits, then replays its result.
CREATE TABLE idempotency_keys (
  scope         text NOT NULL,          -- the caller: 'user:<id>'
  key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
  request_hash  text NOT NULL,          -- SHA-256 of method, route and canonical body
  status        integer,
  response      jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Events for the ERP (and other consumers), written in the same transaction as the production
-- record they describe. Delivered at least once, in order per aggregate, deduplicated by the
-- receiver on `message_id` (the B2MML BODID).
CREATE TABLE outbox_events (
  id              bigserial PRIMARY KEY,
  message_id      uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  aggregate_type  text NOT NULL,
  aggregate_id    text NOT NULL,
  event_type      text NOT NULL,
  payload         jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  delivered_at    timestamptz
);
CREATE INDEX outbox_events_pending_idx ON outbox_events (aggregate_id, id) WHERE status = 'pending';
