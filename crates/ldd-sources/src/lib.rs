//! # ldd-sources
//!
//! Data sources of **ldd**: MongoDB (feature `mongo`) and InfluxDB (feature `influx`),
//! each implementing [`ldd_core::DataSource`].
