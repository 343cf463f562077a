-- Commands to equipment through the command gateway (issue #6, docs/adr/0009): setpoints, recipe
-- downloads and PackML commands. A row is written as 'requested' in one transaction before
-- anything is sent to the machine, and gets its outcome in a second one afterwards: a crash in
-- between leaves a visible 'requested' row, never a write nobody recorded. A finished row never
-- changes, and no row is ever deleted.

CREATE TABLE equipment_commands (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Insertion order: newest-first paging that does not depend on clocks.
  no                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  equipment_id       plant_id NOT NULL REFERENCES equipment (id),
  kind               text NOT NULL
                       CHECK (kind IN ('setpoint', 'recipe', 'start', 'stop', 'hold', 'unhold', 'reset', 'abort', 'clear')),
  -- What was asked for, without kind, reason and signature (never a password).
  payload            jsonb NOT NULL,
  reason             text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
  requested_by_id    bigint REFERENCES users (id),
  requested_by       text NOT NULL,
  -- The electronic signature of a recipe download (signer, meaning, time, hash of what was signed);
  -- the same signature is on the command's 'requested' audit entry.
  signature          jsonb,
  operation_pk       bigint REFERENCES order_operations (id),
  requested_at       timestamptz NOT NULL,
  finished_at        timestamptz,
  outcome            text NOT NULL DEFAULT 'requested'
                       CHECK (outcome IN ('requested', 'confirmed', 'variance', 'failed', 'refused')),
  -- The PackML state read before writing (recipes, PackML commands).
  state              jsonb,
  -- Per value: signal, requested, before, read back, difference, status, error.
  results            jsonb NOT NULL DEFAULT '[]',
  error_code         text,
  error_message      text,
  error_details      jsonb,
  idempotency_scope  text,
  idempotency_key    text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
  request_hash       text,
  request_id         text,
  CHECK ((outcome = 'requested') = (finished_at IS NULL)),
  CHECK (outcome IN ('requested', 'confirmed', 'variance') = (error_code IS NULL)),
  CHECK ((kind = 'recipe') = (signature IS NOT NULL)),
  CHECK ((idempotency_key IS NULL) = (idempotency_scope IS NULL) AND (idempotency_key IS NULL) = (request_hash IS NULL))
);

-- RELIABILITY.md rule 3: the key is stored with the intent, before the machine is touched. A retry
-- with the same key finds the row: its outcome, or 'requested' while it runs.
CREATE UNIQUE INDEX equipment_commands_idempotency_idx ON equipment_commands (idempotency_scope, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX equipment_commands_equipment_idx ON equipment_commands (equipment_id, no DESC);

CREATE FUNCTION equipment_commands_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'equipment_commands keeps every command: DELETE is not allowed'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.outcome <> 'requested' THEN
    RAISE EXCEPTION 'equipment command % is finished (%): it cannot change', OLD.id, OLD.outcome
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.id, NEW.no, NEW.equipment_id, NEW.kind, NEW.payload, NEW.reason, NEW.requested_by_id, NEW.requested_by,
      NEW.signature, NEW.operation_pk, NEW.requested_at, NEW.idempotency_scope, NEW.idempotency_key,
      NEW.request_hash, NEW.request_id)
     IS DISTINCT FROM
     (OLD.id, OLD.no, OLD.equipment_id, OLD.kind, OLD.payload, OLD.reason, OLD.requested_by_id, OLD.requested_by,
      OLD.signature, OLD.operation_pk, OLD.requested_at, OLD.idempotency_scope, OLD.idempotency_key,
      OLD.request_hash, OLD.request_id) THEN
    RAISE EXCEPTION 'equipment command %: only its outcome may be recorded, the request never changes', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER equipment_commands_guard BEFORE UPDATE OR DELETE ON equipment_commands
  FOR EACH ROW EXECUTE FUNCTION equipment_commands_guard();
CREATE TRIGGER equipment_commands_no_truncate BEFORE TRUNCATE ON equipment_commands
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();
