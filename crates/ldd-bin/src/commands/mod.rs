//! One module per subcommand.

pub(crate) mod consume;
pub(crate) mod demo;
pub(crate) mod export;
mod shared;
