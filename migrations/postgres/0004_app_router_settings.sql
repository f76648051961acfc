-- Per-app router settings: answer plain HTTP with a redirect to HTTPS, and how long a backend may take to send
-- its response head (NULL: the router's default).
ALTER TABLE apps ADD COLUMN redirect_https BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN first_byte_timeout_secs BIGINT;
