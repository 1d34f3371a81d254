-- Completeness against the source: what the state knows of each call's UTC day (its call_time, the field Envoy's
-- start_date/end_date filter on), counted by status from the index alone (src/state/days.ts; the plan is checked
-- in test/unit/scans.test.ts). date() of an ISO time with an offset is its UTC day.
CREATE INDEX calls_call_day ON calls (date(call_time), status);
