-- Loom keeps sessions and API tokens in memory between changes (ADR 0013). Every change that can
-- end a credential or alter who it speaks for is announced on `loom_credentials_changed`, at
-- commit, to every Loom process; each empties its cache. A lost LISTEN connection turns a
-- process's cache off until it listens again, so a missed announcement cannot keep a revoked
-- credential alive.
--
-- Not announced: last-use stamps (sessions.last_seen_at, api_tokens.last_used_at), failed-login
-- counters and lockouts (a lockout refuses new logins, not running sessions), new sessions and
-- tokens (nothing is cached for them yet).
CREATE FUNCTION loom_credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('loom_credentials_changed', TG_TABLE_NAME);
  RETURN NULL;
END $$;

CREATE TRIGGER users_credentials_changed
  AFTER UPDATE OF username, password_hash, roles, must_change_password, disabled_at OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION loom_credentials_changed();
CREATE TRIGGER sessions_credentials_changed
  AFTER UPDATE OF user_id, expires_at, revoked_at OR DELETE ON sessions
  FOR EACH STATEMENT EXECUTE FUNCTION loom_credentials_changed();
CREATE TRIGGER api_tokens_credentials_changed
  AFTER UPDATE OF user_id, token_hash, expires_at, revoked_at OR DELETE ON api_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION loom_credentials_changed();
