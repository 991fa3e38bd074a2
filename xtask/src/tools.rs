//! Pinned third-party tools built from Go modules (being written).
