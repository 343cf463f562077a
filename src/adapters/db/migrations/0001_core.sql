-- Loom core: users, sessions, API tokens, and the tamper-evident audit trail.

CREATE TABLE users (
  id                   bigserial PRIMARY KEY,
  username             text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
  display_name         text NOT NULL,
  password_hash        text NOT NULL,
  roles                text[] NOT NULL CHECK (
                         cardinality(roles) > 0 AND
                         roles <@ ARRAY['operator','supervisor','quality','engineer','admin','integration']::text[]),
  must_change_password boolean NOT NULL DEFAULT false,
  failed_logins        integer NOT NULL DEFAULT 0,
  locked_until         timestamptz,
  disabled_at          timestamptz,
  password_changed_at  timestamptz NOT NULL DEFAULT now(),
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (username);

-- Session and token secrets are stored as SHA-256 digests: they are 256-bit random values, so a
-- slow hash adds nothing, and a stolen table reveals no usable credential.
CREATE TABLE sessions (
  token_hash   text PRIMARY KEY,
  user_id      bigint NOT NULL REFERENCES users (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz,
  client_ip    text,
  user_agent   text
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE api_tokens (
  id           bigserial PRIMARY KEY,
  user_id      bigint NOT NULL REFERENCES users (id),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  token_hash   text NOT NULL UNIQUE,
  prefix       text NOT NULL,
  created_by   bigint REFERENCES users (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- Audit trail (21 CFR 11.10(e), RELIABILITY.md rule 8): append-only, server time (UTC), and
-- hash-chained. Writing and chaining are separate so the chain never serialises the writers
-- (docs/adr/0005-asynchronous-audit-chain.md):
--  * audit_log: every change writes its entry in its own transaction, a plain INSERT without any
--    global lock; id, server time and the writing transaction's id are assigned by the database.
--  * audit_chain: one row per entry, appended by audit_chain_pending() in the order entries become
--    final, each hash covering the entry's content and the previous link. An entry becomes final
--    when its transaction is older than every transaction still running (its txid is below the
--    snapshot's xmin), so a transaction that commits late is chained late, never skipped.
-- Both tables reject UPDATE, DELETE and TRUNCATE.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE audit_log (
  id           bigserial PRIMARY KEY,
  txid         xid8 NOT NULL,
  at           timestamptz NOT NULL,
  actor_id     bigint,
  actor_name   text NOT NULL,
  action       text NOT NULL,
  entity_type  text NOT NULL,
  entity_id    text NOT NULL,
  reason       text,
  old_value    jsonb,
  new_value    jsonb,
  signature    jsonb,
  request_id   text
);
CREATE INDEX audit_log_txid_idx ON audit_log (txid);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_name, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION audit_log_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Server time and the real writing transaction; a caller cannot supply either.
  NEW.at   := clock_timestamp();
  NEW.txid := pg_current_xact_id();
  RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_stamp BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_stamp();

CREATE TABLE audit_chain (
  seq         bigint PRIMARY KEY,
  -- No foreign key on purpose: a deleted entry must show up as a broken link, not cascade away.
  entry_id    bigint NOT NULL UNIQUE,
  prev_hash   text NOT NULL,
  hash        text NOT NULL,
  chained_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE audit_chain_head (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  seq        bigint NOT NULL,
  hash       text NOT NULL,
  -- Every entry written by a transaction below this id has been chained.
  horizon    xid8 NOT NULL
);
INSERT INTO audit_chain_head (seq, hash, horizon) VALUES (0, repeat('0', 64), '3'::xid8);

-- The canonical content of an entry and the link before it: a JSON array as jsonb text (jsonb
-- normalises key order and spacing, so the same content always gives the same bytes).
CREATE FUNCTION audit_entry_hash(e audit_log, prev_hash text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    e.id,
    to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    e.actor_id, e.actor_name, e.action, e.entity_type, e.entity_id, e.reason,
    e.old_value, e.new_value, e.signature, e.request_id, prev_hash
  )::text, 'UTF8')), 'hex')
$$;

-- Chains every entry that has become final since the last call; returns how many. Safe to call
-- from several Loom instances at once: the advisory lock makes one chainer at a time.
CREATE FUNCTION audit_chain_pending() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  head  audit_chain_head;
  upto  xid8;
  e     audit_log;
  h     text;
  seq_  bigint;
  hash_ text;
  n     integer := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(7467001);
  SELECT * INTO head FROM audit_chain_head FOR UPDATE;
  -- Every transaction with an id below xmin has ended: its entries are committed or gone.
  upto  := pg_snapshot_xmin(pg_current_snapshot());
  seq_  := head.seq;
  hash_ := head.hash;
  FOR e IN SELECT * FROM audit_log WHERE txid >= head.horizon AND txid < upto ORDER BY id LOOP
    seq_ := seq_ + 1;
    h := audit_entry_hash(e, hash_);
    INSERT INTO audit_chain (seq, entry_id, prev_hash, hash) VALUES (seq_, e.id, hash_, h);
    hash_ := h;
    n := n + 1;
  END LOOP;
  IF upto > head.horizon THEN
    UPDATE audit_chain_head SET seq = seq_, hash = hash_, horizon = upto;
  END IF;
  RETURN n;
END
$$;

CREATE FUNCTION audit_log_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed (corrections are new entries with a reason)', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_chain FROM PUBLIC;
