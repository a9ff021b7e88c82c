//! The Fluent Bit module must export libc's `malloc` and `free` so that the host copies records
//! of any size into the module's own heap (fluentbit-abi.md). Rust's std already links
//! wasi-libc's pair, so they are exported by name rather than redefined.
fn main() {
    let fluentbit = std::env::var_os("CARGO_FEATURE_FLUENTBIT").is_some();
    let wasip1 = std::env::var("TARGET").is_ok_and(|t| t == "wasm32-wasip1");
    if fluentbit && wasip1 {
        println!("cargo:rustc-link-arg-cdylib=--export=malloc");
        println!("cargo:rustc-link-arg-cdylib=--export=free");
    }
}
