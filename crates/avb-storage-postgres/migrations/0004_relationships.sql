-- Relationship tuples of the local ReBAC engine, versioned: a tuple is visible at revision R when
-- created_rev <= R and (deleted_rev IS NULL OR deleted_rev > R), so a snapshot is just a revision number and
-- never holds a connection. Writers serialise on the single `relationship_revision` row, so every revision up
-- to the committed one is complete when a reader sees it. Text columns use the "C" collation: listing order is
-- byte order, like the Rust `Ord` of `Relationship`. A plain subject (no relation) has subject_relation = ''.

CREATE TABLE relationships (
    resource_type    text COLLATE "C" NOT NULL,
    resource_id      text COLLATE "C" NOT NULL,
    relation         text COLLATE "C" NOT NULL,
    subject_type     text COLLATE "C" NOT NULL,
    subject_id       text COLLATE "C" NOT NULL,
    subject_relation text COLLATE "C" NOT NULL DEFAULT '',
    created_rev      bigint NOT NULL,
    deleted_rev      bigint,
    CHECK (deleted_rev IS NULL OR deleted_rev >= created_rev)
);
CREATE UNIQUE INDEX relationships_live_key ON relationships
    (resource_type, resource_id, relation, subject_type, subject_relation, subject_id) WHERE deleted_rev IS NULL;
CREATE INDEX relationships_by_resource_idx ON relationships
    (resource_type, resource_id, relation, subject_type, subject_relation, subject_id);
CREATE INDEX relationships_by_subject_idx ON relationships
    (subject_type, subject_id, subject_relation, resource_type, resource_id, relation);

CREATE TABLE relationship_revision (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision  bigint NOT NULL
);
INSERT INTO relationship_revision (singleton, revision) VALUES (true, 0);
