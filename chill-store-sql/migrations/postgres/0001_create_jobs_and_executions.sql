-- ChillScheduler, PostgreSQL: jobs and their executions.
-- ${q} is the table prefix (default chill_), ${p} the same for index names.
-- Ids are UUIDs, instants BIGINT milliseconds since the Unix epoch, free text BYTEA of
-- UTF-8 bytes, JSON and enumerations TEXT.

CREATE TABLE IF NOT EXISTS ${q}jobs (
    id UUID NOT NULL PRIMARY KEY,
    name BYTEA NOT NULL,
    prompt BYTEA NOT NULL,
    system_prompt BYTEA,
    schedule BYTEA NOT NULL,
    timezone BYTEA NOT NULL,
    enabled BOOLEAN NOT NULL,
    max_turns BIGINT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    retry_policy TEXT NOT NULL,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    start_date BIGINT,
    end_date BIGINT,
    blackout_periods TEXT NOT NULL,
    dst_policy TEXT NOT NULL,
    overlap_policy TEXT NOT NULL,
    catch_up_policy TEXT NOT NULL,
    catch_up_window BIGINT NOT NULL,
    jitter BIGINT NOT NULL,
    pause_note BYTEA,
    next_run_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by BYTEA,
    updated_by BYTEA,
    version BIGINT NOT NULL,
    deleted_at BIGINT,
    -- next_run_at while the job is enabled and not deleted, else NULL: what due_jobs reads
    due_at BIGINT,
    last_run_at BIGINT,
    last_run_status TEXT,
    last_run_duration BIGINT,
    last_run_error BYTEA,
    total_runs BIGINT NOT NULL,
    success_count BIGINT NOT NULL,
    failure_count BIGINT NOT NULL,
    average_duration BIGINT,
    total_duration_ms BIGINT NOT NULL,
    total_input_tokens BIGINT NOT NULL,
    total_output_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    total_cost_micro_usd BIGINT NOT NULL,
    running_count BIGINT NOT NULL,
    buffered_execution_id UUID
);

-- due_jobs and next_due_at
CREATE INDEX IF NOT EXISTS ${p}jobs_due ON ${q}jobs (due_at, id);

CREATE TABLE IF NOT EXISTS ${q}executions (
    -- derived from (job, slot) for scheduled runs and (root, attempt) for retries: the
    -- primary key is what makes a second claim of a slot impossible
    id UUID NOT NULL PRIMARY KEY,
    job_id UUID NOT NULL,
    scheduled_for BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    completed_at BIGINT,
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    request_payload TEXT NOT NULL,
    response TEXT,
    duration_ms BIGINT,
    api_latency_ms BIGINT,
    tools_executed_count BIGINT NOT NULL,
    tokens_used BIGINT,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cost_micro_usd BIGINT,
    error_message BYTEA,
    error_type BYTEA,
    error_details TEXT,
    retry_count BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    root_execution_id UUID NOT NULL,
    lease_owner BYTEA,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    -- due_at while the execution is a pending retry attempt, else NULL: what due_attempts reads
    attempt_due_at BIGINT,
    -- lease_expires_at while the execution runs, else NULL: what expired_leases reads
    lease_until BIGINT
);

-- a job's history, newest first
CREATE INDEX IF NOT EXISTS ${p}executions_job ON ${q}executions (job_id, created_at, id);
-- due retry attempts
CREATE INDEX IF NOT EXISTS ${p}executions_attempt_due ON ${q}executions (attempt_due_at, id);
-- expired leases
CREATE INDEX IF NOT EXISTS ${p}executions_lease ON ${q}executions (lease_until, id);
-- retention
CREATE INDEX IF NOT EXISTS ${p}executions_created ON ${q}executions (created_at, id);
