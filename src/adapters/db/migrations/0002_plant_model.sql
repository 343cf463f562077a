-- Plant model (ISA-95 master data): units, qualifications, the equipment hierarchy, material
-- definitions, personnel and products with their routings. Normalised, with real foreign keys,
-- so the database itself refuses to delete what something still refers to.
--
-- Foreign keys are DEFERRABLE INITIALLY IMMEDIATE: single writes are checked at once, while a
-- whole-file import defers them to commit (SET CONSTRAINTS ALL DEFERRED), so a file may list a
-- child before the parent it moves to. The domain (src/domain/plant) checks the rules a foreign
-- key cannot express (level order, cycles, a product's material being finished) before writing.

-- The same alphabet as the domain's Identifier (src/domain/shared/fields.ts).
CREATE DOMAIN plant_id AS text CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');

CREATE TABLE units (
  id          plant_id PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE qualifications (
  id             plant_id PRIMARY KEY,
  name           text NOT NULL,
  description    text,
  validity_days  integer CHECK (validity_days > 0),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE equipment (
  id            plant_id PRIMARY KEY,
  parent_id     plant_id REFERENCES equipment (id) DEFERRABLE INITIALLY IMMEDIATE,
  level         text NOT NULL CHECK (level IN ('Enterprise', 'Site', 'Area', 'WorkCenter', 'WorkUnit')),
  name          text NOT NULL,
  description   text,
  capabilities  text[] NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((level = 'Enterprise') = (parent_id IS NULL)),
  CHECK (parent_id <> id)
);
CREATE INDEX equipment_parent_idx ON equipment (parent_id);

CREATE TABLE material_definitions (
  id           plant_id PRIMARY KEY,
  name         text NOT NULL,
  unit_id      plant_id NOT NULL REFERENCES units (id) DEFERRABLE INITIALLY IMMEDIATE,
  class        text NOT NULL CHECK (class IN ('raw', 'component', 'intermediate', 'finished', 'consumable')),
  tracking     text NOT NULL CHECK (tracking IN ('lot', 'serial', 'none')),
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX material_definitions_unit_idx ON material_definitions (unit_id);

-- `username` links a person to a login (users.username); no foreign key, because people are often
-- defined before their accounts exist, and accounts come and go independently.
CREATE TABLE persons (
  id          plant_id PRIMARY KEY,
  name        text NOT NULL,
  username    text UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE person_qualifications (
  person_id         plant_id NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
  position          integer NOT NULL,
  qualification_id  plant_id NOT NULL REFERENCES qualifications (id) DEFERRABLE INITIALLY IMMEDIATE,
  issued            date NOT NULL,
  -- The last valid day; NULL never expires.
  expires           date CHECK (expires >= issued),
  PRIMARY KEY (person_id, position)
);
CREATE INDEX person_qualifications_qualification_idx ON person_qualifications (qualification_id);

CREATE TABLE products (
  id           plant_id PRIMARY KEY,
  name         text NOT NULL,
  material_id  plant_id NOT NULL REFERENCES material_definitions (id) DEFERRABLE INITIALLY IMMEDIATE,
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_material_idx ON products (material_id);

-- A routing is a product's operations in `position` order; replacing a product replaces them all.
CREATE TABLE routing_operations (
  product_id             plant_id NOT NULL REFERENCES products (id) ON DELETE CASCADE,
  operation_id           plant_id NOT NULL,
  position               integer NOT NULL,
  name                   text NOT NULL,
  work_center_id         plant_id NOT NULL REFERENCES equipment (id) DEFERRABLE INITIALLY IMMEDIATE,
  standard_cycle_time_s  numeric NOT NULL CHECK (standard_cycle_time_s > 0),
  -- Recipe values: [{name, value, unit?, min?, max?}], written to the machine as a set.
  parameters             jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(parameters) = 'array'),
  PRIMARY KEY (product_id, operation_id),
  UNIQUE (product_id, position)
);
CREATE INDEX routing_operations_work_center_idx ON routing_operations (work_center_id);

CREATE TABLE routing_operation_work_units (
  product_id    plant_id NOT NULL,
  operation_id  plant_id NOT NULL,
  position      integer NOT NULL,
  equipment_id  plant_id NOT NULL REFERENCES equipment (id) DEFERRABLE INITIALLY IMMEDIATE,
  PRIMARY KEY (product_id, operation_id, position),
  UNIQUE (product_id, operation_id, equipment_id),
  FOREIGN KEY (product_id, operation_id) REFERENCES routing_operations (product_id, operation_id) ON DELETE CASCADE
);
CREATE INDEX routing_operation_work_units_equipment_idx ON routing_operation_work_units (equipment_id);

CREATE TABLE routing_operation_qualifications (
  product_id        plant_id NOT NULL,
  operation_id      plant_id NOT NULL,
  position          integer NOT NULL,
  qualification_id  plant_id NOT NULL REFERENCES qualifications (id) DEFERRABLE INITIALLY IMMEDIATE,
  PRIMARY KEY (product_id, operation_id, position),
  UNIQUE (product_id, operation_id, qualification_id),
  FOREIGN KEY (product_id, operation_id) REFERENCES routing_operations (product_id, operation_id) ON DELETE CASCADE
);
CREATE INDEX routing_operation_qualifications_qualification_idx
  ON routing_operation_qualifications (qualification_id);

CREATE TABLE routing_operation_bom (
  product_id    plant_id NOT NULL,
  operation_id  plant_id NOT NULL,
  position      integer NOT NULL,
  material_id   plant_id NOT NULL REFERENCES material_definitions (id) DEFERRABLE INITIALLY IMMEDIATE,
  quantity      numeric NOT NULL CHECK (quantity > 0),
  -- NULL: the material's own unit (given, it must equal it; the domain checks that).
  unit_id       plant_id REFERENCES units (id) DEFERRABLE INITIALLY IMMEDIATE,
  PRIMARY KEY (product_id, operation_id, position),
  FOREIGN KEY (product_id, operation_id) REFERENCES routing_operations (product_id, operation_id) ON DELETE CASCADE
);
CREATE INDEX routing_operation_bom_material_idx ON routing_operation_bom (material_id);
CREATE INDEX routing_operation_bom_unit_idx ON routing_operation_bom (unit_id);

CREATE TABLE routing_operation_characteristics (
  product_id         plant_id NOT NULL,
  operation_id       plant_id NOT NULL,
  position           integer NOT NULL,
  characteristic_id  plant_id NOT NULL,
  name               text NOT NULL,
  kind               text NOT NULL CHECK (kind IN ('numeric', 'attribute')),
  unit_id            plant_id REFERENCES units (id) DEFERRABLE INITIALLY IMMEDIATE,
  lsl                numeric,
  usl                numeric,
  target             numeric,
  PRIMARY KEY (product_id, operation_id, position),
  UNIQUE (product_id, operation_id, characteristic_id),
  FOREIGN KEY (product_id, operation_id) REFERENCES routing_operations (product_id, operation_id) ON DELETE CASCADE,
  CHECK (kind = 'numeric' OR (lsl IS NULL AND usl IS NULL AND target IS NULL)),
  CHECK (kind = 'attribute' OR lsl IS NOT NULL OR usl IS NOT NULL),
  CHECK (lsl IS NULL OR usl IS NULL OR lsl <= usl)
);
CREATE INDEX routing_operation_characteristics_unit_idx ON routing_operation_characteristics (unit_id);
