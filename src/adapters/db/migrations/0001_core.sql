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
-- Audit trail (21 CFR 11.10(e), RELIABILITY.md rule 8): append-only, server time (UTC),
-- hash-chained. The chain is computed by the database itself in a BEFORE INSERT trigger, so every
-- writer (the app, a migration, a DBA) extends it the same way, and appends are serialised by an
-- advisory lock so two transactions can never fork the chain.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE audit_log (
  seq          bigint PRIMARY KEY,
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
  request_id   text,
  prev_hash    text NOT NULL,
  hash         text NOT NULL
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, seq);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_name, seq);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- The canonical content of an entry: a JSON array of every column but `hash`, as jsonb text (jsonb
-- normalises key order and spacing, so the same content always gives the same bytes).
CREATE FUNCTION audit_entry_hash(e audit_log) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    e.seq,
    to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    e.actor_id, e.actor_name, e.action, e.entity_type, e.entity_id, e.reason,
    e.old_value, e.new_value, e.signature, e.request_id, e.prev_hash
  )::text, 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  last_seq  bigint;
  last_hash text;
BEGIN
  -- Serialise appends until commit. Loom runs READ COMMITTED, so the SELECT below (a new
  -- statement, a new snapshot) sees the entry committed by whoever held the lock before us.
  PERFORM pg_advisory_xact_lock(7467001);
  SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
  NEW.seq       := COALESCE(last_seq, 0) + 1;
  NEW.at        := clock_timestamp();
  NEW.prev_hash := COALESCE(last_hash, repeat('0', 64));
  NEW.hash      := audit_entry_hash(NEW);
  RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION audit_log_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed (corrections are new entries with a reason)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
