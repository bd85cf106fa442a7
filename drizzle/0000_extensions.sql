-- Hand-written: extensions and immutable helpers used by the generated search column.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
--> statement-breakpoint
-- array_to_string() is only STABLE, so a generated column cannot call it directly; the topics
-- array holds plain text, for which the conversion is in fact immutable.
CREATE OR REPLACE FUNCTION gi_topics_text(topics text[]) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
	AS $$ SELECT array_to_string(topics, ' ') $$;
--> statement-breakpoint
-- 'react-router_v6.js' -> 'react-router_v6.js react router v6 js': the whole identifier plus its parts,
-- so that both the exact name and each word of it match.
CREATE OR REPLACE FUNCTION gi_name_words(name text) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
	AS $$ SELECT name || ' ' || regexp_replace(name, '[-_.]+', ' ', 'g') $$;
