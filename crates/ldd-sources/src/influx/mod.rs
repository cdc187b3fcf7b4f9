//! InfluxDB source (in progress).
