//! Splitting host input into records: NDJSON, or CloudTrail's S3 export (`{"Records":[...]}`),
//! whole or one export per line. Records are borrowed slices of the input, never re-encoded.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Export<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// The records of `input`, in order. Blank lines are skipped; any other line that is not an S3
/// export is a record as it stands (valid or not: the engine counts what it cannot read).
pub fn split_records(input: &[u8]) -> Vec<&[u8]> {
    let trimmed = input.trim_ascii();
    if trimmed.first() == Some(&b'{') && looks_like_export(trimmed) {
        if let Ok(export) = serde_json::from_slice::<Export<'_>>(trimmed) {
            return export.records.into_iter().map(|r| r.get().as_bytes()).collect();
        }
    }
    let mut records = Vec::new();
    for line in input.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        match looks_like_export(line.trim_ascii()).then(|| serde_json::from_slice::<Export<'_>>(line)) {
            Some(Ok(export)) => records.extend(export.records.into_iter().map(|r| r.get().as_bytes())),
            _ => records.push(line),
        }
    }
    records
}

fn looks_like_export(bytes: &[u8]) -> bool {
    let after_brace = bytes.get(1..).unwrap_or_default().trim_ascii_start();
    after_brace.starts_with(b"\"Records\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ndjson_and_exports() {
        let ndjson = b"{\"a\":1}\r\n\n  \n{\"b\":2}\nnot json";
        assert_eq!(split_records(ndjson), [&b"{\"a\":1}"[..], b"{\"b\":2}", b"not json"]);
        let export = b"{\n \"Records\": [ {\"a\":1},\n {\"b\": [2]} ]\n}\n";
        assert_eq!(split_records(export), [&b"{\"a\":1}"[..], b"{\"b\": [2]}"]);
        let two_exports = b"{\"Records\":[{\"a\":1}]}\n{\"Records\":[{\"b\":2}]}";
        assert_eq!(split_records(two_exports), [&b"{\"a\":1}"[..], b"{\"b\":2}"]);
    }
}
