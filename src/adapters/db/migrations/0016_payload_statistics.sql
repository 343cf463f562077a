-- No planner statistics for JSON payload columns that no query filters on.
--
-- ANALYZE sorts a sample of every column to find its most common values and histogram. For jsonb
-- that means comparing whole documents: in a perf profile taken during operation completions,
-- autovacuum's ANALYZE of the audit and outbox tables was a tenth of PostgreSQL's CPU while it ran,
-- most of it in jsonb comparisons (session 16). The planner never uses these statistics: no Loom
-- query puts an audit value, an outbox payload, an activity's detail or a stored response in a
-- WHERE clause. (routing_operations.parameters is searched with @>, so it keeps its statistics.)
--
-- A statistics target of 0 makes ANALYZE skip the column; the table's row count and every other
-- column are analysed as before. A later query that does filter on one of these columns should set
-- its target back (ALTER COLUMN … SET STATISTICS -1) in its own migration.
ALTER TABLE audit_log
  ALTER COLUMN old_value SET STATISTICS 0,
  ALTER COLUMN new_value SET STATISTICS 0,
  ALTER COLUMN signature SET STATISTICS 0;
ALTER TABLE outbox_events ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE operation_activities ALTER COLUMN detail SET STATISTICS 0;
ALTER TABLE idempotency_keys ALTER COLUMN response SET STATISTICS 0;
ALTER TABLE order_operations
  ALTER COLUMN parameters SET STATISTICS 0,
  ALTER COLUMN bom SET STATISTICS 0,
  ALTER COLUMN characteristics SET STATISTICS 0;
ALTER TABLE equipment_commands
  ALTER COLUMN payload SET STATISTICS 0,
  ALTER COLUMN results SET STATISTICS 0,
  ALTER COLUMN error_details SET STATISTICS 0,
  ALTER COLUMN signature SET STATISTICS 0;
ALTER TABLE erp_inbound_messages ALTER COLUMN result SET STATISTICS 0;
ALTER TABLE ncrs ALTER COLUMN signature SET STATISTICS 0;
