-- Every completion and every quality result sums the quantity under NCR of its operation
-- (ncrs.operation_pk). Without an index that was a sequential scan of all NCRs ever raised, on
-- the hottest path of the shop floor, growing with the plant's history (found with auto_explain,
-- session 11).
CREATE INDEX ncrs_operation_idx ON ncrs (operation_pk);
