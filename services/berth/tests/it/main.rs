//! End-to-end tests of the berth binary.
