//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod consume;
pub(crate) mod datasets;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod load;
pub(crate) mod shared;
pub(crate) mod worker;
