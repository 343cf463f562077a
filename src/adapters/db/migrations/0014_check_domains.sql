-- Single-column rules of the tables every completion writes become domains (ADR 0014).
--
-- PostgreSQL reads a table's CHECK constraints from their stored text and compiles them again for
-- every statement that writes the table (once per statement, not per connection). For
-- order_operations, with eight of them, that was about 40 µs per UPDATE (pgbench, one-row update:
-- 6,100–7,400 against 8,900–10,600 per second without the checks), on the hottest path of the shop
-- floor. A domain's check is kept parsed in the connection's type cache: the same rule, enforced on
-- every value written, at no per-statement cost (measured the same as no checks at all).
--
-- The rules are unchanged. Only the multi-column rule of order_operations stays a table CHECK.
CREATE DOMAIN nonnegative_quantity AS numeric(20, 6) CHECK (VALUE >= 0);
CREATE DOMAIN positive_quantity AS numeric(20, 6) CHECK (VALUE > 0);
CREATE DOMAIN positive_numeric AS numeric CHECK (VALUE > 0);
CREATE DOMAIN nonnegative_integer AS integer CHECK (VALUE >= 0);
CREATE DOMAIN operation_state AS text
  CHECK (VALUE IN ('Pending', 'Ready', 'Running', 'Paused', 'Completed', 'OnHold'));
CREATE DOMAIN production_event_kind AS text CHECK (VALUE IN ('good', 'scrap', 'rework'));
CREATE DOMAIN outbox_status AS text CHECK (VALUE IN ('pending', 'delivered', 'dead'));

ALTER TABLE order_operations
  DROP CONSTRAINT order_operations_standard_cycle_time_s_check,
  DROP CONSTRAINT order_operations_planned_quantity_check,
  DROP CONSTRAINT order_operations_good_quantity_check,
  DROP CONSTRAINT order_operations_scrap_quantity_check,
  DROP CONSTRAINT order_operations_rework_quantity_check,
  DROP CONSTRAINT order_operations_state_check,
  DROP CONSTRAINT order_operations_rework_loop_check,
  ALTER COLUMN standard_cycle_time_s TYPE positive_numeric,
  ALTER COLUMN planned_quantity TYPE positive_quantity,
  ALTER COLUMN good_quantity TYPE nonnegative_quantity,
  ALTER COLUMN scrap_quantity TYPE nonnegative_quantity,
  ALTER COLUMN rework_quantity TYPE nonnegative_quantity,
  ALTER COLUMN state TYPE operation_state,
  ALTER COLUMN rework_loop TYPE nonnegative_integer;

ALTER TABLE production_events
  DROP CONSTRAINT production_events_kind_check,
  DROP CONSTRAINT production_events_quantity_check,
  ALTER COLUMN kind TYPE production_event_kind,
  ALTER COLUMN quantity TYPE positive_quantity;

ALTER TABLE outbox_events
  DROP CONSTRAINT outbox_events_status_check,
  ALTER COLUMN status TYPE outbox_status;
