-- ERP outbound delivery (issue 4). The relay claims, per production order, the oldest event that is
-- not delivered; a dead event holds back the later events of its order, so the claim query asks
-- "is there an earlier pending or dead event of this order?". 0003 indexes the pending ones; this
-- indexes the dead ones (few, but the question is asked for every candidate).
CREATE INDEX outbox_events_dead_idx ON outbox_events (aggregate_id, id) WHERE status = 'dead';

-- The admin list (GET /api/erp/outbox?order=…) reads one order's events in id order.
CREATE INDEX outbox_events_aggregate_idx ON outbox_events (aggregate_id, id);
