//! Integration tests: the real router between real HTTP backends on 127.0.0.1.
