-- Packages found by full-text search: a column PostgreSQL computes (`GENERATED ALWAYS … STORED`)
-- and a `tsvector` kept by a trigger. Neither is ever written by the application.
CREATE TABLE packages (
    id SERIAL PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    description VARCHAR,
    keywords TEXT[] NOT NULL DEFAULT '{}',
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    name_length INTEGER NOT NULL GENERATED ALWAYS AS (char_length(name)) STORED,
    textsearchable_index_col TSVECTOR NOT NULL
);

CREATE FUNCTION packages_search_trigger() RETURNS trigger AS $$
BEGIN
    NEW.textsearchable_index_col :=
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.name, '')), 'A') ||
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.description, '')), 'B') ||
        setweight(to_tsvector('pg_catalog.english', array_to_string(NEW.keywords, ' ')), 'C');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER packages_search BEFORE INSERT OR UPDATE ON packages
    FOR EACH ROW EXECUTE FUNCTION packages_search_trigger();
