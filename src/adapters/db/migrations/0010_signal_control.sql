-- What a signal is to the command gateway: whether commands may write it, and its PackML role
-- (src/domain/signal/signal.ts). One PackML state and one PackML command signal per equipment.

ALTER TABLE signals
  ADD COLUMN writable boolean NOT NULL DEFAULT false,
  ADD COLUMN packml text CHECK (packml IN ('state', 'command')),
  ADD CONSTRAINT signals_packml_command_writable CHECK (packml IS DISTINCT FROM 'command' OR writable);

CREATE UNIQUE INDEX signals_packml_role_idx ON signals (equipment_id, packml) WHERE packml IS NOT NULL;
