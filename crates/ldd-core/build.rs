//! Compiles `proto/ldd/v1/records.proto` into Rust types with prost, using `protox` so that
//! no `protoc` binary has to be installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/ldd/v1/records.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
