//! aerospike.conf rendering (being written).
