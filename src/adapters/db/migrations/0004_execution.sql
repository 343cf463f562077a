-- Execution: production orders and their operations, equipment state, lots and serials,
-- consumption and genealogy, quality results, nonconformances (NCRs) and the production events
-- that yield KPIs are computed from. Quantities are numeric(20,6): exact, never floating point.
-- Invariants live here (CHECKs, unique keys, foreign keys); use cases take row locks in a fixed
-- order (order → operation → lots by id) so concurrent requests cannot deadlock or overdraw.

CREATE TABLE reason_codes (
  code         plant_id PRIMARY KEY,
  category     text NOT NULL CHECK (category IN ('defect', 'scrap', 'downtime', 'hold')),
  description  text NOT NULL,
  active       boolean NOT NULL DEFAULT true
);
INSERT INTO reason_codes (code, category, description) VALUES
  ('dimension', 'defect', 'Dimension out of tolerance'),
  ('surface', 'defect', 'Surface defect (scratch, dent, paint run)'),
  ('weld', 'defect', 'Weld defect (missing, burnt, cold joint)'),
  ('wiring', 'defect', 'Wiring defect (wrong routing, loose connector, damaged insulation)'),
  ('torque', 'defect', 'Fastener torque out of specification'),
  ('function', 'defect', 'Functional test failed'),
  ('material', 'defect', 'Defective incoming material'),
  ('handling', 'defect', 'Damaged in handling'),
  ('other', 'defect', 'Other (describe in the NCR)');

-- Shifts for KPIs "by shift": plant-local times of day; a shift may wrap midnight.
CREATE TABLE shifts (
  id          plant_id PRIMARY KEY,
  name        text NOT NULL,
  starts_at   time NOT NULL,
  ends_at     time NOT NULL
);
INSERT INTO shifts (id, name, starts_at, ends_at) VALUES
  ('early', 'Early shift', '06:00', '14:00'),
  ('late', 'Late shift', '14:00', '22:00'),
  ('night', 'Night shift', '22:00', '06:00');

CREATE FUNCTION shift_of(at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT id FROM shifts
   WHERE CASE WHEN starts_at < ends_at THEN at::time >= starts_at AND at::time < ends_at
              ELSE at::time >= starts_at OR at::time < ends_at END
   ORDER BY starts_at LIMIT 1
$$;

CREATE TABLE equipment_state (
  equipment_id  plant_id PRIMARY KEY REFERENCES equipment (id) ON DELETE CASCADE,
  state         text NOT NULL CHECK (state IN ('Idle', 'Execute', 'Held', 'Suspended', 'Stopped', 'Aborted',
                                                'Complete', 'Down', 'Setup', 'Unknown')),
  reason        text,
  since         timestamptz NOT NULL DEFAULT now(),
  source        text NOT NULL DEFAULT 'api'
);

CREATE TABLE equipment_state_events (
  id            bigserial PRIMARY KEY,
  equipment_id  plant_id NOT NULL REFERENCES equipment (id) ON DELETE CASCADE,
  state         text NOT NULL,
  reason        text,
  at            timestamptz NOT NULL DEFAULT now(),
  source        text NOT NULL,
  actor         text NOT NULL
);
CREATE INDEX equipment_state_events_idx ON equipment_state_events (equipment_id, at);

CREATE SEQUENCE production_order_number;

CREATE TABLE production_orders (
  id               text PRIMARY KEY,
  external_id      text UNIQUE CHECK (length(external_id) BETWEEN 1 AND 100),
  product_id       plant_id NOT NULL REFERENCES products (id),
  material_id      plant_id NOT NULL REFERENCES material_definitions (id),
  quantity         numeric(20, 6) NOT NULL CHECK (quantity > 0),
  unit_id          plant_id NOT NULL REFERENCES units (id),
  due_at           timestamptz,
  priority         integer NOT NULL DEFAULT 500 CHECK (priority BETWEEN 1 AND 999),
  state            text NOT NULL CHECK (state IN ('Released', 'InProgress', 'Completed', 'Closed', 'OnHold', 'Cancelled')),
  held_from        text,
  hold_reason      text,
  released_at      timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  completed_at     timestamptz,
  closed_at        timestamptz,
  created_by       text NOT NULL,
  -- The creating request, canonicalised: a repeat with the same external id and same content is
  -- a no-op; a changed repeat updates a not-yet-started order (the ERP issue relies on this).
  request_hash     text
);
CREATE INDEX production_orders_state_idx ON production_orders (state, priority, due_at);
CREATE INDEX production_orders_product_idx ON production_orders (product_id);

-- An operation of an order, a snapshot of the routing step at release time: later edits of the
-- plant model do not change work already released. `sequence` orders them: routing steps at
-- multiples of 100, rework inserted right after the step whose NCR sent the unit back.
CREATE TABLE order_operations (
  id                       bigserial PRIMARY KEY,
  order_id                 text NOT NULL REFERENCES production_orders (id),
  operation_id             text NOT NULL,
  sequence                 integer NOT NULL,
  name                     text NOT NULL,
  work_center_id           plant_id NOT NULL REFERENCES equipment (id),
  allowed_work_units       text[] NOT NULL DEFAULT '{}',
  work_unit_id             plant_id REFERENCES equipment (id),
  standard_cycle_time_s    numeric NOT NULL CHECK (standard_cycle_time_s > 0),
  required_qualifications  text[] NOT NULL DEFAULT '{}',
  parameters               jsonb NOT NULL DEFAULT '[]',
  bom                      jsonb NOT NULL DEFAULT '[]',
  characteristics          jsonb NOT NULL DEFAULT '[]',
  planned_quantity         numeric(20, 6) NOT NULL CHECK (planned_quantity > 0),
  good_quantity            numeric(20, 6) NOT NULL DEFAULT 0 CHECK (good_quantity >= 0),
  scrap_quantity           numeric(20, 6) NOT NULL DEFAULT 0 CHECK (scrap_quantity >= 0),
  rework_quantity          numeric(20, 6) NOT NULL DEFAULT 0 CHECK (rework_quantity >= 0),
  state                    text NOT NULL CHECK (state IN ('Pending', 'Ready', 'Running', 'Paused', 'Completed', 'OnHold')),
  held_from                text,
  is_rework                boolean NOT NULL DEFAULT false,
  rework_of                bigint REFERENCES order_operations (id),
  rework_loop              integer NOT NULL DEFAULT 0 CHECK (rework_loop >= 0),
  started_at               timestamptz,
  started_by               text,
  person_id                plant_id,
  completed_at             timestamptz,
  completed_by             text,
  UNIQUE (order_id, sequence),
  UNIQUE (order_id, operation_id),
  CHECK (is_rework = (rework_of IS NOT NULL))
);
CREATE INDEX order_operations_work_center_idx ON order_operations (work_center_id, state);
CREATE INDEX order_operations_work_unit_idx ON order_operations (work_unit_id, state);

-- What happened to an operation and when (start, pause, resume, complete, hold, release,
-- override, rework-inserted): the timeline of the batch record.
CREATE TABLE operation_activities (
  id            bigserial PRIMARY KEY,
  operation_pk  bigint NOT NULL REFERENCES order_operations (id),
  kind          text NOT NULL,
  at            timestamptz NOT NULL DEFAULT now(),
  actor         text NOT NULL,
  person_id     plant_id,
  work_unit_id  plant_id,
  detail        jsonb
);
CREATE INDEX operation_activities_idx ON operation_activities (operation_pk, id);

-- A lot (a quantity of one material) or a serial (one unit). Ids are globally unique in Loom.
CREATE TABLE lots (
  id             text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$'),
  kind           text NOT NULL CHECK (kind IN ('lot', 'serial')),
  material_id    plant_id NOT NULL REFERENCES material_definitions (id),
  quantity       numeric(20, 6) NOT NULL CHECK (quantity >= 0),
  unit_id        plant_id NOT NULL REFERENCES units (id),
  status         text NOT NULL CHECK (status IN ('Released', 'Quarantine', 'Blocked', 'Consumed')),
  location       text,
  supplier_lot   text,
  produced_by    bigint REFERENCES order_operations (id),
  order_id       text REFERENCES production_orders (id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CHECK (kind = 'lot' OR quantity <= 1),
  CHECK (status <> 'Consumed' OR quantity = 0)
);
CREATE INDEX lots_material_idx ON lots (material_id);
CREATE INDEX lots_order_idx ON lots (order_id);
CREATE INDEX lots_produced_by_idx ON lots (produced_by);

-- Quantity taken from a lot at an operation. `into` names the unit it was built into when known;
-- otherwise edges are drawn to whatever the operation produces.
CREATE TABLE material_consumptions (
  id            bigserial PRIMARY KEY,
  operation_pk  bigint NOT NULL REFERENCES order_operations (id),
  lot_id        text NOT NULL REFERENCES lots (id),
  into_lot_id   text REFERENCES lots (id),
  quantity      numeric(20, 6) NOT NULL CHECK (quantity > 0),
  actor         text NOT NULL,
  person_id     plant_id,
  equipment_id  plant_id,
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX material_consumptions_operation_idx ON material_consumptions (operation_pk);
CREATE INDEX material_consumptions_lot_idx ON material_consumptions (lot_id);

-- Genealogy: from (consumed, or split from) → to (produced, or split into).
CREATE TABLE genealogy_edges (
  id            bigserial PRIMARY KEY,
  from_lot      text NOT NULL REFERENCES lots (id),
  to_lot        text NOT NULL REFERENCES lots (id),
  kind          text NOT NULL CHECK (kind IN ('consume', 'split', 'merge')),
  quantity      numeric(20, 6) NOT NULL CHECK (quantity > 0),
  operation_pk  bigint REFERENCES order_operations (id),
  actor         text NOT NULL,
  person_id     plant_id,
  equipment_id  plant_id,
  at            timestamptz NOT NULL DEFAULT now(),
  CHECK (from_lot <> to_lot)
);
CREATE INDEX genealogy_edges_from_idx ON genealogy_edges (from_lot) INCLUDE (to_lot);
CREATE INDEX genealogy_edges_to_idx ON genealogy_edges (to_lot) INCLUDE (from_lot);

CREATE SEQUENCE ncr_number;

CREATE TABLE quality_results (
  id                 bigserial PRIMARY KEY,
  operation_pk       bigint NOT NULL REFERENCES order_operations (id),
  characteristic_id  text NOT NULL,
  kind               text NOT NULL CHECK (kind IN ('numeric', 'attribute')),
  value_numeric      numeric,
  value_attribute    text CHECK (value_attribute IN ('pass', 'fail')),
  lsl                numeric,
  usl                numeric,
  verdict            text NOT NULL CHECK (verdict IN ('pass', 'fail')),
  lot_id             text REFERENCES lots (id),
  actor              text NOT NULL,
  person_id          plant_id,
  at                 timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'numeric') = (value_numeric IS NOT NULL)),
  CHECK ((kind = 'attribute') = (value_attribute IS NOT NULL))
);
CREATE INDEX quality_results_operation_idx ON quality_results (operation_pk, characteristic_id);

CREATE TABLE ncrs (
  id                    bigserial PRIMARY KEY,
  number                text NOT NULL UNIQUE,
  order_id              text NOT NULL REFERENCES production_orders (id),
  operation_pk          bigint NOT NULL REFERENCES order_operations (id),
  result_id             bigint REFERENCES quality_results (id),
  characteristic_id     text,
  lot_id                text REFERENCES lots (id),
  quantity              numeric(20, 6) NOT NULL CHECK (quantity > 0),
  description           text NOT NULL,
  cause_code            plant_id REFERENCES reason_codes (code),
  state                 text NOT NULL CHECK (state IN ('Open', 'Dispositioned', 'Closed')),
  disposition           text CHECK (disposition IN ('rework', 'scrap', 'use-as-is', 'return-to-supplier')),
  disposition_reason    text,
  dispositioned_by      text,
  dispositioned_at      timestamptz,
  signature             jsonb,
  rework_operation_pk   bigint REFERENCES order_operations (id),
  created_by            text NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  CHECK ((state = 'Open') = (disposition IS NULL))
);
CREATE INDEX ncrs_order_idx ON ncrs (order_id);
CREATE INDEX ncrs_state_idx ON ncrs (state);

-- The facts yield KPIs are computed from: good, scrap and rework quantities at an operation, with
-- everything KPIs group by copied in (no joins over a time range): step, product, work unit,
-- cause, shift. `first_pass` is false for quantities reported by rework operations.
CREATE TABLE production_events (
  id             bigserial PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  kind           text NOT NULL CHECK (kind IN ('good', 'scrap', 'rework')),
  quantity       numeric(20, 6) NOT NULL CHECK (quantity > 0),
  order_id       text NOT NULL REFERENCES production_orders (id),
  operation_pk   bigint NOT NULL REFERENCES order_operations (id),
  operation_id   text NOT NULL,
  routing_step   text NOT NULL,
  product_id     plant_id NOT NULL,
  work_unit_id   plant_id,
  cause_code     plant_id,
  shift_id       text,
  first_pass     boolean NOT NULL,
  ncr_id         bigint REFERENCES ncrs (id)
);
CREATE INDEX production_events_at_idx ON production_events (at);

CREATE FUNCTION production_events_shift() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.shift_id := COALESCE(NEW.shift_id, shift_of(NEW.at));
  RETURN NEW;
END
$$;
CREATE TRIGGER production_events_shift BEFORE INSERT ON production_events
  FOR EACH ROW EXECUTE FUNCTION production_events_shift();
CREATE INDEX production_events_product_idx ON production_events (product_id, at);
