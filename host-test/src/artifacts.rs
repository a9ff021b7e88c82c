//! Where the built artifacts and the shared third-party data live.

use std::path::PathBuf;

/// The project root (the workspace holding `host-test/`).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// A built artifact under `dist/`; panics with the command that builds it when missing.
pub fn dist(name: &str) -> PathBuf {
    let path = project_root().join("dist").join(name);
    assert!(path.exists(), "{} is missing: run `make build` first", path.display());
    path
}

/// A file of the third-party CloudTrail records in `../shared/data/` (never copied here).
pub fn shared_data(name: &str) -> PathBuf {
    let path = project_root().join("..").join("shared").join("data").join(name);
    assert!(path.exists(), "{} is missing: tests read ../shared/data beside the project", path.display());
    path
}
