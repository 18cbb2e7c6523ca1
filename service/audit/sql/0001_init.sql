-- Herald's central audit store, version 1. Applied by `herald audit db init|upgrade`, never by hand.
-- The files in HERALD_AUDIT_DIR stay the source of truth: each row keeps the record's canonical text
-- (`record`) beside typed columns for SQL, so `herald audit verify --db` recomputes every chain.

-- One row per audit file shipped: how far it is shipped, so shipping resumes and never repeats.
CREATE TABLE files (
    node text NOT NULL,
    file text NOT NULL,
    day date NOT NULL,                      -- the UTC day the file was opened (from its name)
    shipped_seq bigint NOT NULL DEFAULT -1, -- last seq shipped (-1: none yet)
    shipped_offset bigint NOT NULL DEFAULT 0, -- bytes of the file shipped (complete lines only)
    last_hash text,                         -- hash of the last record shipped: the next one's prev
    last_ts timestamptz,
    held boolean NOT NULL DEFAULT true,     -- a writer had it open at the last ship
    torn bytea,                             -- bytes after the last newline of a file no writer holds
    shipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, file)
);

-- Decisions, partitioned by month of their UTC day; partitions are made by the shipper as needed.
CREATE TABLE decisions (
    node text NOT NULL,
    file text NOT NULL,
    seq bigint NOT NULL,
    day date NOT NULL,                      -- UTC day of logged_at
    logged_at timestamptz NOT NULL,         -- the record's `ts`
    decided_at timestamptz,                 -- the record's `at` (the instant the rules were asked for)
    decision_id text,
    country text,
    subdivision text,
    source text,
    publisher text,
    article_id text,
    notices text[] NOT NULL DEFAULT '{}',
    rules text[] NOT NULL DEFAULT '{}',
    ruleset text,
    what_if boolean NOT NULL DEFAULT false, -- a what-if decision: left out of served counts
    record text NOT NULL,                   -- the canonical JSON line, as written and hashed
    PRIMARY KEY (node, file, seq, day)
) PARTITION BY RANGE (day);

-- The summary and the dashboard: day x country (x subdivision) x notices, read from the index alone.
CREATE INDEX decisions_summary ON decisions (day, country, subdivision) INCLUDE (notices, what_if);
CREATE INDEX decisions_id ON decisions (decision_id);
CREATE INDEX decisions_logged ON decisions (logged_at);

-- Every other record of the chains: started, stopped, ruleset_loaded, recovered, ...
CREATE TABLE events (
    node text NOT NULL,
    file text NOT NULL,
    seq bigint NOT NULL,
    logged_at timestamptz NOT NULL,
    kind text NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (node, file, seq)
);
CREATE INDEX events_logged ON events (logged_at);

-- Every ruleset any node loaded, by its hash: the canonical bytes the hash was computed over.
CREATE TABLE rulesets (
    hash text PRIMARY KEY,                  -- sha256:<hex>
    canonical bytea NOT NULL,
    shipped_at timestamptz NOT NULL DEFAULT now()
);

-- Checkpoint records (chain heads per file), one row per line of a node's checkpoint log.
CREATE TABLE checkpoints (
    node text NOT NULL,
    source text NOT NULL,                   -- the checkpoint file it came from
    line bigint NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (node, source, line)
);

-- Each `herald audit db prune`: what it dropped and the chain heads it removed, so verify can still
-- check that the files kept continue the chains of the files pruned.
CREATE TABLE pruned (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    before date NOT NULL,
    partitions text[] NOT NULL,
    heads jsonb NOT NULL                    -- [{node, file, records, first_seq, last_seq, last_hash, last_kind}]
);
