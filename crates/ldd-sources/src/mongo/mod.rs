//! MongoDB source (in progress).
