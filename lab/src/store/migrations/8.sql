-- Migration 8: sealed evaluation, provenance, comparisons per lock, and the hash chain.
-- The reasons are in migrations.rs; this file is append-only like the others.

-- Sealed evaluation. Each run records what the sandbox enforced, its workers'
-- environment and the prepared data (targets) it was scored on. Run files gain
-- kinds; SQLite cannot widen a CHECK in place, so the table is rebuilt.
ALTER TABLE runs ADD COLUMN sandbox TEXT;
ALTER TABLE runs ADD COLUMN environment TEXT CHECK (environment IS NULL OR json_valid(environment));
ALTER TABLE runs ADD COLUMN prepared_sha256 TEXT;
CREATE TABLE run_files_new (
    run_id  INTEGER NOT NULL REFERENCES runs (id),
    kind    TEXT NOT NULL CHECK (kind IN ('predictions', 'labels', 'errors', 'outputs', 'scores', 'code', 'artifact')),
    name    TEXT NOT NULL,
    path    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    len     INTEGER,
    PRIMARY KEY (run_id, kind, name)
) WITHOUT ROWID;
INSERT INTO run_files_new SELECT run_id, kind, name, path, sha256, len FROM run_files;
DROP TABLE run_files;
ALTER TABLE run_files_new RENAME TO run_files;

-- Provenance. The runner always writes a note with its results (the gate's
-- reasoning, a crash's cause, `swept: ...`); `lab result` never does, and
-- imports write `imported from ...`. So a result is the harness's when it has a
-- note that is not an import's and its experiment has runs (or the note is one
-- the harness writes without a run); everything else was typed by an agent.
ALTER TABLE results ADD COLUMN source TEXT NOT NULL DEFAULT 'agent' CHECK (source IN ('harness', 'agent'));
UPDATE results SET source = 'harness'
WHERE note IS NOT NULL AND note NOT LIKE 'imported from %'
  AND (EXISTS (SELECT 1 FROM runs u WHERE u.experiment_id = results.experiment_id)
       OR note LIKE 'lab failed while %' OR note LIKE 'swept: %');

-- An amendment names the result it replaced (immutable, so hashed), where
-- `superseded_by` on the old row is the mutable half of the same link.
ALTER TABLE results ADD COLUMN amends INTEGER REFERENCES results (id);
CREATE INDEX results_superseded ON results (superseded_by) WHERE superseded_by IS NOT NULL;
UPDATE results SET amends = (SELECT o.id FROM results o WHERE o.superseded_by = results.id)
WHERE id IN (SELECT superseded_by FROM results WHERE superseded_by IS NOT NULL);

-- The comparison (runs.frozen_lock_sha256 of the experiment's latest full run,
-- else its latest run) a result was recorded under; NULL without a run.
ALTER TABLE results ADD COLUMN comparison TEXT;
UPDATE results SET comparison = (
    SELECT u.frozen_lock_sha256 FROM runs u WHERE u.experiment_id = results.experiment_id
    ORDER BY u.tier = 'full' DESC, u.id DESC LIMIT 1)
WHERE experiment_id IN (SELECT experiment_id FROM runs);

-- The derived metrics index carries both, so a leader or a best (harness keeps
-- of one comparison) is one probe of a partial index.
ALTER TABLE metrics ADD COLUMN source TEXT NOT NULL DEFAULT 'agent';
ALTER TABLE metrics ADD COLUMN comparison TEXT;
UPDATE metrics SET (source, comparison) = (SELECT r.source, r.comparison FROM results r WHERE r.id = metrics.result_id);
CREATE INDEX metrics_leaders ON metrics (leaf, comparison, name, value) WHERE verdict = 'keep' AND source = 'harness';
CREATE INDEX metrics_reported ON metrics (leaf, name, value) WHERE verdict = 'keep' AND source = 'agent';

-- Comparisons: one row each time a leaf starts running under a key it was not
-- under just before (a re-lock, new inputs, or a return to an earlier lock).
-- Rows from before this migration know their key but not the files or the gate.
CREATE TABLE comparisons (
    id            INTEGER PRIMARY KEY,
    leaf          TEXT NOT NULL,
    key           TEXT NOT NULL,
    files         TEXT NOT NULL CHECK (json_valid(files)),
    gate          TEXT NOT NULL CHECK (json_valid(gate)),
    inputs        TEXT NOT NULL CHECK (json_valid(inputs)),
    experiment_id INTEGER REFERENCES experiments (id),
    created_at    TEXT NOT NULL
);
CREATE INDEX comparisons_by_leaf ON comparisons (leaf, id);
INSERT INTO comparisons (leaf, key, files, gate, inputs, experiment_id, created_at)
SELECT e.leaf, u.frozen_lock_sha256, 'null', 'null', 'null', MIN(u.experiment_id), MIN(u.started_at)
FROM runs u JOIN experiments e ON e.id = u.experiment_id
WHERE e.leaf IS NOT NULL AND u.frozen_lock_sha256 IS NOT NULL
GROUP BY e.leaf, u.frozen_lock_sha256
ORDER BY MIN(u.id);

-- The hash chain: one entry per inserted row of a chained table. row_sha256
-- covers the row's immutable columns (store/chain.rs lists them; the triggers
-- below pass the same, in the same order); column_digests holds 8 hex digits
-- per column, to name which one changed; hash links the entry to prev_hash.
CREATE TABLE chain (
    seq            INTEGER PRIMARY KEY,
    table_name     TEXT NOT NULL,
    row_id         TEXT NOT NULL,
    row_sha256     TEXT NOT NULL,
    column_digests TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);

-- Rows already there: digests first, then the links in one recursive walk.
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'hypotheses', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.leaf, t.title, t.mechanism, t.prediction, t.created_at) AS d FROM hypotheses t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'experiments', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.hypothesis_id, t.leaf, t.git_commit, t.dirty, t.diff_sha256, t.host, t.pid, t.watch_pid, t.budget_s, t.started_at) AS d FROM experiments t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'results', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.experiment_id, t.leaf, t.verdict, t.metrics, t.mechanism, t.theory_revision, t.note, t.created_at, t.source, t.comparison, t.amends) AS d FROM results t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'runs', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.experiment_id, t.tier, t.seed, t.device, t.budget_s, t.wall_s, t.exit_reason, t.detail, t.exit_code, t.signal, t.metric_source, t.frozen_lock_sha256, t.metrics, t.log_path, t.log_tail, t.started_at, t.finished_at, t.sandbox, t.environment, t.prepared_sha256) AS d FROM runs t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'run_files', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT t.run_id || '/' || t.kind || '/' || t.name AS k, lab_chain_digest(t.run_id, t.kind, t.name, t.path, t.sha256, t.len) AS d FROM run_files t ORDER BY t.run_id, t.kind, t.name);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'run_inputs', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT t.run_id || '/' || t.name AS k, lab_chain_digest(t.run_id, t.name, t.leaf, t.file, t.experiment_id, t.path, t.sha256) AS d FROM run_inputs t ORDER BY t.run_id, t.name);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'gate_reports', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.experiment_id, t.leaf, t.leader_experiment_id, t.mode, t.verdict, t.improvement, t.ci_low, t.ci_high, t.prob_better, t.n, t.reason, t.flags, t.min_improvement, t.confidence, t.created_at) AS d FROM gate_reports t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'baselines', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.leaf, t.lock_sha256, t.leader_experiment_id, t.n, t.mean, t.sd, t.seeds, t.created_at) AS d FROM baselines t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'sealed_holdout', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.run_id AS TEXT) AS k, lab_chain_digest(t.run_id, t.experiment_id, t.metrics) AS d FROM sealed_holdout t ORDER BY t.run_id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'holdout_reads', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.leaf, t.experiments, t.purpose, t.created_at) AS d FROM holdout_reads t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'archives', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.experiment_id AS TEXT) AS k, lab_chain_digest(t.experiment_id, t.verdict, t.path) AS d FROM archives t ORDER BY t.experiment_id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'submissions', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.leaf, t.experiment_id, t.path, t.sha256, t.rows, t.created_at) AS d FROM submissions t ORDER BY t.id);
INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'comparisons', k, substr(d, 1, 64), substr(d, 66), '', ''
    FROM (SELECT CAST(t.id AS TEXT) AS k, lab_chain_digest(t.id, t.leaf, t.key, t.files, t.gate, t.inputs, t.experiment_id, t.created_at) AS d FROM comparisons t ORDER BY t.id);
CREATE TEMP TABLE chain_links (seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
WITH RECURSIVE walk (seq, prev_hash, hash) AS (
    SELECT seq, '', lab_chain_link('', table_name, row_id, row_sha256) FROM main.chain WHERE seq = 1
    UNION ALL
    SELECT c.seq, w.hash, lab_chain_link(w.hash, c.table_name, c.row_id, c.row_sha256)
    FROM walk w JOIN main.chain c ON c.seq = w.seq + 1
)
INSERT INTO temp.chain_links (seq, prev_hash, hash) SELECT seq, prev_hash, hash FROM walk;
UPDATE main.chain SET (prev_hash, hash) = (SELECT l.prev_hash, l.hash FROM temp.chain_links l WHERE l.seq = main.chain.seq);
DROP TABLE temp.chain_links;

-- Every later insert, by any writer that has the functions (lab registers them
-- on every connection); the sqlite3 shell has none, so its inserts fail.
CREATE TRIGGER chain_hypotheses AFTER INSERT ON hypotheses BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'hypotheses', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'hypotheses', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.leaf, new.title, new.mechanism, new.prediction, new.created_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_experiments AFTER INSERT ON experiments BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'experiments', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'experiments', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.hypothesis_id, new.leaf, new.git_commit, new.dirty, new.diff_sha256, new.host, new.pid, new.watch_pid, new.budget_s, new.started_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_results AFTER INSERT ON results BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'results', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'results', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.experiment_id, new.leaf, new.verdict, new.metrics, new.mechanism, new.theory_revision, new.note, new.created_at, new.source, new.comparison, new.amends) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_runs AFTER INSERT ON runs BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'runs', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'runs', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.experiment_id, new.tier, new.seed, new.device, new.budget_s, new.wall_s, new.exit_reason, new.detail, new.exit_code, new.signal, new.metric_source, new.frozen_lock_sha256, new.metrics, new.log_path, new.log_tail, new.started_at, new.finished_at, new.sandbox, new.environment, new.prepared_sha256) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_run_files AFTER INSERT ON run_files BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'run_files', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'run_files', k, substr(d, 1, 64))
    FROM (SELECT new.run_id || '/' || new.kind || '/' || new.name AS k, lab_chain_digest(new.run_id, new.kind, new.name, new.path, new.sha256, new.len) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_run_inputs AFTER INSERT ON run_inputs BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'run_inputs', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'run_inputs', k, substr(d, 1, 64))
    FROM (SELECT new.run_id || '/' || new.name AS k, lab_chain_digest(new.run_id, new.name, new.leaf, new.file, new.experiment_id, new.path, new.sha256) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_gate_reports AFTER INSERT ON gate_reports BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'gate_reports', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'gate_reports', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.experiment_id, new.leaf, new.leader_experiment_id, new.mode, new.verdict, new.improvement, new.ci_low, new.ci_high, new.prob_better, new.n, new.reason, new.flags, new.min_improvement, new.confidence, new.created_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_baselines AFTER INSERT ON baselines BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'baselines', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'baselines', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.leaf, new.lock_sha256, new.leader_experiment_id, new.n, new.mean, new.sd, new.seeds, new.created_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_sealed_holdout AFTER INSERT ON sealed_holdout BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'sealed_holdout', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'sealed_holdout', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.run_id AS TEXT) AS k, lab_chain_digest(new.run_id, new.experiment_id, new.metrics) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_holdout_reads AFTER INSERT ON holdout_reads BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'holdout_reads', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'holdout_reads', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.leaf, new.experiments, new.purpose, new.created_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_archives AFTER INSERT ON archives BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'archives', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'archives', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.experiment_id AS TEXT) AS k, lab_chain_digest(new.experiment_id, new.verdict, new.path) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_submissions AFTER INSERT ON submissions BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'submissions', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'submissions', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.leaf, new.experiment_id, new.path, new.sha256, new.rows, new.created_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
CREATE TRIGGER chain_comparisons AFTER INSERT ON comparisons BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'comparisons', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'comparisons', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.leaf, new.key, new.files, new.gate, new.inputs, new.experiment_id, new.created_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
