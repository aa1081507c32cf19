-- ChillScheduler, PostgreSQL: budgets, per-job concurrency, pause after failures, the spend per
-- day and month and the run of consecutive failures on jobs; executions by end time (for the
-- metrics aggregation's list_finished).
ALTER TABLE ${q}jobs ADD COLUMN budget TEXT;
ALTER TABLE ${q}jobs ADD COLUMN max_concurrency BIGINT;
ALTER TABLE ${q}jobs ADD COLUMN pause_after_failures BIGINT;
ALTER TABLE ${q}jobs ADD COLUMN consecutive_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ${q}jobs ADD COLUMN spend_day BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ${q}jobs ADD COLUMN spend_day_micro_usd BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ${q}jobs ADD COLUMN spend_month BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ${q}jobs ADD COLUMN spend_month_micro_usd BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS ${p}executions_completed ON ${q}executions (completed_at, id);
