-- ChillScheduler, SQLite: jobs and their executions.
-- ${q} is the table prefix (default chill_), ${p} the same for index names.
-- Ids are 16-byte BLOBs, instants INTEGER milliseconds since the Unix epoch, free text BLOBs of
-- UTF-8 bytes, JSON and enumerations TEXT.

CREATE TABLE IF NOT EXISTS ${q}jobs (
    id BLOB NOT NULL PRIMARY KEY,
    name BLOB NOT NULL,
    prompt BLOB NOT NULL,
    system_prompt BLOB,
    schedule BLOB NOT NULL,
    timezone BLOB NOT NULL,
    enabled INTEGER NOT NULL,
    max_turns INTEGER NOT NULL,
    timeout_secs INTEGER NOT NULL,
    retry_policy TEXT NOT NULL,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    start_date INTEGER,
    end_date INTEGER,
    blackout_periods TEXT NOT NULL,
    dst_policy TEXT NOT NULL,
    overlap_policy TEXT NOT NULL,
    catch_up_policy TEXT NOT NULL,
    catch_up_window INTEGER NOT NULL,
    jitter INTEGER NOT NULL,
    pause_note BLOB,
    next_run_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    version INTEGER NOT NULL,
    deleted_at INTEGER,
    -- next_run_at while the job is enabled and not deleted, else NULL: what due_jobs reads
    due_at INTEGER,
    last_run_at INTEGER,
    last_run_status TEXT,
    last_run_duration INTEGER,
    last_run_error BLOB,
    total_runs INTEGER NOT NULL,
    success_count INTEGER NOT NULL,
    failure_count INTEGER NOT NULL,
    average_duration INTEGER,
    total_duration_ms INTEGER NOT NULL,
    total_input_tokens INTEGER NOT NULL,
    total_output_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL,
    total_cost_micro_usd INTEGER NOT NULL,
    running_count INTEGER NOT NULL,
    buffered_execution_id BLOB
);

-- due_jobs and next_due_at
CREATE INDEX IF NOT EXISTS ${p}jobs_due ON ${q}jobs (due_at, id);

CREATE TABLE IF NOT EXISTS ${q}executions (
    -- derived from (job, slot) for scheduled runs and (root, attempt) for retries: the
    -- primary key is what makes a second claim of a slot impossible
    id BLOB NOT NULL PRIMARY KEY,
    job_id BLOB NOT NULL,
    scheduled_for INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    completed_at INTEGER,
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    request_payload TEXT NOT NULL,
    response TEXT,
    duration_ms INTEGER,
    api_latency_ms INTEGER,
    tools_executed_count INTEGER NOT NULL,
    tokens_used INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_micro_usd INTEGER,
    error_message BLOB,
    error_type BLOB,
    error_details TEXT,
    retry_count INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    root_execution_id BLOB NOT NULL,
    lease_owner BLOB,
    lease_expires_at INTEGER,
    created_at INTEGER NOT NULL,
    -- due_at while the execution is a pending retry attempt, else NULL: what due_attempts reads
    attempt_due_at INTEGER,
    -- lease_expires_at while the execution runs, else NULL: what expired_leases reads
    lease_until INTEGER
);

-- a job's history, newest first
CREATE INDEX IF NOT EXISTS ${p}executions_job ON ${q}executions (job_id, created_at, id);
-- due retry attempts
CREATE INDEX IF NOT EXISTS ${p}executions_attempt_due ON ${q}executions (attempt_due_at, id);
-- expired leases
CREATE INDEX IF NOT EXISTS ${p}executions_lease ON ${q}executions (lease_until, id);
-- retention
CREATE INDEX IF NOT EXISTS ${p}executions_created ON ${q}executions (created_at, id);
