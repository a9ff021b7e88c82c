//! Host adapters, one per file, each behind its Cargo feature. Each is a thin translation of one
//! host's ABI into calls on the engine; none holds detection logic.

#[cfg(feature = "component")]
mod component;
#[cfg(feature = "extism")]
mod extism;
#[cfg(feature = "fluentbit")]
mod fluentbit;
#[cfg(feature = "js")]
mod js;
