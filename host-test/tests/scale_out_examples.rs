//! The scale-out example configurations (`examples/scale-out/kafka/`) checked by the real Fluent
//! Bit's `--dry-run` (every plugin's properties, the wasm filter's module loaded); the build
//! `scripts/fluent-bit.sh` makes has the `kafka` input and output and the `nest` filter. No
//! broker runs here: that records split by key give the single instance's alerts is proven by
//! tests/scale_out.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::scratch_dir;

use tripline_host_test::artifacts::{dist, project_root};
use tripline_host_test::real_fluentbit::binary;

/// The example's absolute paths moved under `root` (the module from `dist/`), the example copied
/// where its relative `parsers_file` finds `examples/fluent-bit/parsers.conf`.
fn placed(root: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let module = dist("tripline-fluentbit.wasm");
    assert!(module.is_file(), "{} is missing: run `make fluentbit` first", module.display());
    let text = std::fs::read_to_string(project_root().join("examples/scale-out/kafka").join(name)).unwrap();
    let mut text = text.replace("/opt/tripline/tripline-fluentbit.wasm", module.to_str().unwrap());
    for (from, to) in [("/etc/tripline", "etc"), ("/var/lib/tripline", "lib"), ("/var/log/tripline", "out"), ("/var/log/cloudtrail", "in")] {
        let dir = root.join(to);
        std::fs::create_dir_all(&dir).unwrap();
        text = text.replace(from, dir.to_str().unwrap());
    }
    let kafka = root.join("examples/scale-out/kafka");
    std::fs::create_dir_all(&kafka).unwrap();
    std::fs::create_dir_all(root.join("examples/fluent-bit")).unwrap();
    std::fs::copy(project_root().join("examples/fluent-bit/parsers.conf"), root.join("examples/fluent-bit/parsers.conf")).unwrap();
    let file = kafka.join(name);
    std::fs::write(&file, edit(text)).unwrap();
    file
}

fn dry_run(fluent_bit: &Path, config: &Path) -> Output {
    let output = Command::new(fluent_bit).arg("--dry-run").arg("-c").arg(config).output().unwrap();
    eprintln!("{} --dry-run -c {}: {}\n{}", fluent_bit.display(), config.display(), output.status, String::from_utf8_lossy(&output.stderr));
    output
}

#[test]
fn the_kafka_examples_pass_the_real_fluent_bits_dry_run() {
    let fluent_bit = binary().unwrap();
    let root = scratch_dir("scale-out-examples");
    let root = root.as_path();
    for name in ["consumer.yaml", "producer.yaml"] {
        let config = placed(root, name, |text| text);
        assert!(dry_run(&fluent_bit, &config).status.success(), "{name} passes the dry run");
    }
    // The dry run reads the properties: a misspelled one fails it, named.
    let misspelled = placed(root, "consumer.yaml", |text| text.replace("group_id:", "group_idd:"));
    let failed = dry_run(&fluent_bit, &misspelled);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("group_idd"));
}
