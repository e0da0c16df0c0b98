-- A package registry in the style of a public one: users, crates, their versions, owners,
-- daily download counts and keywords. Counters are kept by triggers, `updated_at` by
-- Diesel's `diesel_manage_updated_at`.

CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    gh_login VARCHAR NOT NULL,
    name VARCHAR,
    gh_avatar VARCHAR,
    gh_id INTEGER NOT NULL,
    account_lock_reason VARCHAR,
    email CITEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_admin BOOLEAN NOT NULL DEFAULT false
);
-- Neither is a column list a model can declare: one is on an expression, one is partial.
CREATE UNIQUE INDEX users_gh_login_lower ON users (lower(gh_login));
CREATE UNIQUE INDEX users_gh_id ON users (gh_id) WHERE gh_id > 0;

CREATE TABLE crates (
    id SERIAL PRIMARY KEY,
    name VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    downloads INTEGER NOT NULL DEFAULT 0,
    description VARCHAR,
    homepage VARCHAR,
    repository VARCHAR,
    max_upload_size INTEGER,
    max_features SMALLINT,
    CONSTRAINT crates_name_key UNIQUE (name),
    CONSTRAINT crates_downloads_check CHECK (downloads >= 0),
    CONSTRAINT crates_name_format CHECK (name ~ '^[a-zA-Z][a-zA-Z0-9_-]*$')
);
SELECT diesel_manage_updated_at('crates');

CREATE TABLE versions (
    id SERIAL PRIMARY KEY,
    crate_id INTEGER NOT NULL,
    num VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    downloads INTEGER NOT NULL DEFAULT 0,
    features JSONB NOT NULL DEFAULT '{}',
    yanked BOOLEAN NOT NULL DEFAULT false,
    license VARCHAR,
    crate_size INTEGER,
    published_by INTEGER,
    bin_names TEXT[] NOT NULL DEFAULT '{}',
    CONSTRAINT versions_crate_id_num_key UNIQUE (crate_id, num),
    CONSTRAINT versions_crate_id_fkey FOREIGN KEY (crate_id) REFERENCES crates (id) ON DELETE CASCADE,
    CONSTRAINT versions_published_by_fkey FOREIGN KEY (published_by) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT versions_crate_size_check CHECK (crate_size >= 0)
);
SELECT diesel_manage_updated_at('versions');

CREATE TABLE crate_owners (
    crate_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL,
    owner_kind INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by INTEGER,
    deleted BOOLEAN NOT NULL DEFAULT false,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT crate_owners_pkey PRIMARY KEY (crate_id, owner_id, owner_kind),
    CONSTRAINT crate_owners_crate_id_fkey FOREIGN KEY (crate_id) REFERENCES crates (id) ON DELETE CASCADE,
    CONSTRAINT crate_owners_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES users (id),
    CONSTRAINT crate_owners_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id)
);
SELECT diesel_manage_updated_at('crate_owners');

CREATE TABLE version_downloads (
    version_id INTEGER NOT NULL,
    downloads INTEGER NOT NULL DEFAULT 1,
    counted INTEGER NOT NULL DEFAULT 0,
    date DATE NOT NULL DEFAULT CURRENT_DATE,
    processed BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT version_downloads_pkey PRIMARY KEY (version_id, date),
    CONSTRAINT version_downloads_version_id_fkey FOREIGN KEY (version_id) REFERENCES versions (id) ON DELETE CASCADE,
    CONSTRAINT version_downloads_downloads_check CHECK (downloads >= 0)
);

-- Every download row adds its count to its version and its crate, on INSERT and COPY alike.
CREATE FUNCTION count_version_downloads() RETURNS trigger AS $$
BEGIN
    UPDATE versions SET downloads = downloads + NEW.downloads WHERE id = NEW.version_id;
    UPDATE crates SET downloads = downloads + NEW.downloads
        WHERE id = (SELECT crate_id FROM versions WHERE id = NEW.version_id);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER count_version_downloads AFTER INSERT ON version_downloads
    FOR EACH ROW EXECUTE PROCEDURE count_version_downloads();

CREATE TABLE keywords (
    id SERIAL PRIMARY KEY,
    keyword VARCHAR(50) NOT NULL,
    crates_cnt INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT keywords_keyword_key UNIQUE (keyword),
    CONSTRAINT keywords_crates_cnt_check CHECK (crates_cnt >= 0)
);

CREATE TABLE crates_keywords (
    crate_id INTEGER NOT NULL,
    keyword_id INTEGER NOT NULL,
    CONSTRAINT crates_keywords_pkey PRIMARY KEY (crate_id, keyword_id),
    CONSTRAINT crates_keywords_crate_id_fkey FOREIGN KEY (crate_id) REFERENCES crates (id) ON DELETE CASCADE,
    CONSTRAINT crates_keywords_keyword_id_fkey FOREIGN KEY (keyword_id) REFERENCES keywords (id)
);

CREATE FUNCTION count_crates_keywords() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE keywords SET crates_cnt = crates_cnt + 1 WHERE id = NEW.keyword_id;
        RETURN NEW;
    ELSE
        UPDATE keywords SET crates_cnt = crates_cnt - 1 WHERE id = OLD.keyword_id;
        RETURN OLD;
    END IF;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER count_crates_keywords AFTER INSERT OR DELETE ON crates_keywords
    FOR EACH ROW EXECUTE PROCEDURE count_crates_keywords();

CREATE TYPE version_action AS ENUM ('publish', 'yank', 'unyank');

CREATE TABLE version_owner_actions (
    id SERIAL PRIMARY KEY,
    version_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    action version_action NOT NULL,
    time TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT version_owner_actions_version_id_fkey FOREIGN KEY (version_id) REFERENCES versions (id) ON DELETE CASCADE,
    CONSTRAINT version_owner_actions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id)
);
