-- ChillScheduler, MySQL and MariaDB: jobs and their executions.
-- ${q} is the table prefix (default chill_), ${p} the same for index names.
-- Ids are BINARY(16), instants BIGINT milliseconds since the Unix epoch, free text LONGBLOB of
-- UTF-8 bytes, JSON LONGTEXT and enumerations VARCHAR, both utf8mb4 with a binary collation.
-- MySQL has no CREATE INDEX IF NOT EXISTS: the indexes are part of the tables.

CREATE TABLE IF NOT EXISTS ${q}jobs (
    id BINARY(16) NOT NULL PRIMARY KEY,
    name LONGBLOB NOT NULL,
    prompt LONGBLOB NOT NULL,
    system_prompt LONGBLOB,
    schedule LONGBLOB NOT NULL,
    timezone LONGBLOB NOT NULL,
    enabled BOOLEAN NOT NULL,
    max_turns BIGINT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    retry_policy LONGTEXT NOT NULL,
    tags LONGTEXT NOT NULL,
    metadata LONGTEXT NOT NULL,
    start_date BIGINT,
    end_date BIGINT,
    blackout_periods LONGTEXT NOT NULL,
    dst_policy LONGTEXT NOT NULL,
    overlap_policy VARCHAR(32) NOT NULL,
    catch_up_policy VARCHAR(32) NOT NULL,
    catch_up_window BIGINT NOT NULL,
    jitter BIGINT NOT NULL,
    pause_note LONGBLOB,
    next_run_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by LONGBLOB,
    updated_by LONGBLOB,
    version BIGINT NOT NULL,
    deleted_at BIGINT,
    -- next_run_at while the job is enabled and not deleted, else NULL: what due_jobs reads
    due_at BIGINT,
    last_run_at BIGINT,
    last_run_status VARCHAR(32),
    last_run_duration BIGINT,
    last_run_error LONGBLOB,
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
    buffered_execution_id BINARY(16),
    -- due_jobs and next_due_at
    INDEX ${p}jobs_due (due_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ${q}executions (
    -- derived from (job, slot) for scheduled runs and (root, attempt) for retries: the
    -- primary key is what makes a second claim of a slot impossible
    id BINARY(16) NOT NULL PRIMARY KEY,
    job_id BINARY(16) NOT NULL,
    scheduled_for BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    completed_at BIGINT,
    status VARCHAR(32) NOT NULL,
    trigger_kind VARCHAR(32) NOT NULL,
    request_payload LONGTEXT NOT NULL,
    response LONGTEXT,
    duration_ms BIGINT,
    api_latency_ms BIGINT,
    tools_executed_count BIGINT NOT NULL,
    tokens_used BIGINT,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cost_micro_usd BIGINT,
    error_message LONGBLOB,
    error_type LONGBLOB,
    error_details LONGTEXT,
    retry_count BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    root_execution_id BINARY(16) NOT NULL,
    lease_owner LONGBLOB,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    -- due_at while the execution is a pending retry attempt, else NULL: what due_attempts reads
    attempt_due_at BIGINT,
    -- lease_expires_at while the execution runs, else NULL: what expired_leases reads
    lease_until BIGINT,
    -- a job's history, newest first
    INDEX ${p}executions_job (job_id, created_at, id),
    -- due retry attempts
    INDEX ${p}executions_attempt_due (attempt_due_at, id),
    -- expired leases
    INDEX ${p}executions_lease (lease_until, id),
    -- retention
    INDEX ${p}executions_created (created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

