-- The dispatch lists read the operations still to be done from their own small table, so that an
-- operation's state changes no index of order_operations (ADR 0015).
--
-- Before, order_operations had indexes on (work_center_id, state) and (work_unit_id, state). An
-- update that changes an indexed column cannot be a HOT update: PostgreSQL writes a new entry into
-- every index of the table. Every start, pause, completion and readying changes `state`, so each
-- wrote five index entries (these two, the primary key and both unique keys): ten of the 25 index
-- entries of an operation completion. Now those updates stay on their page (HOT, with room left by
-- the fillfactor) and touch no index.
--
-- operation_queue holds one row per operation that is not Completed, of an order that is not
-- Cancelled, with the columns the dispatch lists select by. Triggers keep it exact: an operation
-- enters when it is inserted, leaves when it completes or its order is cancelled, and follows a
-- change of its work center or work unit. Completion is one DELETE, which writes no index entry;
-- readying, pausing and resuming do not touch it at all. The lists join back to order_operations
-- for the state, so the queue never holds a second copy of it.
ALTER TABLE order_operations SET (fillfactor = 75);
DROP INDEX order_operations_work_center_idx;
DROP INDEX order_operations_work_unit_idx;

CREATE TABLE operation_queue (
  operation_pk    bigint PRIMARY KEY REFERENCES order_operations (id) ON DELETE CASCADE,
  work_center_id  plant_id NOT NULL,
  work_unit_id    plant_id
);
CREATE INDEX operation_queue_work_center_idx ON operation_queue (work_center_id);
CREATE INDEX operation_queue_work_unit_idx ON operation_queue (work_unit_id);

INSERT INTO operation_queue (operation_pk, work_center_id, work_unit_id)
SELECT o.id, o.work_center_id, o.work_unit_id
  FROM order_operations o JOIN production_orders p ON p.id = o.order_id
 WHERE o.state <> 'Completed' AND p.state <> 'Cancelled';

CREATE FUNCTION operation_queue_enter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO operation_queue (operation_pk, work_center_id, work_unit_id)
  SELECT n.id, n.work_center_id, n.work_unit_id
    FROM new_operations n JOIN production_orders p ON p.id = n.order_id
   WHERE n.state <> 'Completed' AND p.state <> 'Cancelled';
  RETURN NULL;
END $$;
CREATE TRIGGER operation_queue_enter AFTER INSERT ON order_operations
  REFERENCING NEW TABLE AS new_operations
  FOR EACH STATEMENT EXECUTE FUNCTION operation_queue_enter();

-- The WHEN clause is evaluated without calling the function: readying, starting on an assigned
-- unit, pausing and resuming cost nothing here.
CREATE FUNCTION operation_queue_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state = 'Completed' THEN
    DELETE FROM operation_queue WHERE operation_pk = NEW.id;
  ELSE
    UPDATE operation_queue SET work_center_id = NEW.work_center_id, work_unit_id = NEW.work_unit_id
     WHERE operation_pk = NEW.id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER operation_queue_follow AFTER UPDATE ON order_operations
  FOR EACH ROW
  WHEN ((NEW.state = 'Completed' AND OLD.state <> 'Completed')
        OR OLD.work_center_id IS DISTINCT FROM NEW.work_center_id
        OR OLD.work_unit_id IS DISTINCT FROM NEW.work_unit_id)
  EXECUTE FUNCTION operation_queue_follow();

CREATE FUNCTION operation_queue_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM operation_queue q USING order_operations o
   WHERE q.operation_pk = o.id AND o.order_id = NEW.id;
  RETURN NULL;
END $$;
CREATE TRIGGER operation_queue_cancel AFTER UPDATE OF state ON production_orders
  FOR EACH ROW
  WHEN (NEW.state = 'Cancelled' AND OLD.state <> 'Cancelled')
  EXECUTE FUNCTION operation_queue_cancel();
