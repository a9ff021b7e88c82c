//! The detections, one per file, each with its metadata, logic and tests.
//!
//! The engine finds them only through [`REGISTRY`]: adding a detection is adding a file and a line.

use crate::detection::Constructor;

pub mod abnormally_high_cloud_security_group_api_calls;
pub mod aws_exfiltration_via_batch_service;

/// Every detection by configuration key, in the order their alerts are produced.
pub const REGISTRY: &[(&str, Constructor)] = &[
    (aws_exfiltration_via_batch_service::KEY, aws_exfiltration_via_batch_service::construct),
    (
        abnormally_high_cloud_security_group_api_calls::KEY,
        abnormally_high_cloud_security_group_api_calls::construct,
    ),
];
