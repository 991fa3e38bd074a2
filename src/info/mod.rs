//! Aerospike info protocol (being written).
