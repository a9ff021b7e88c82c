//! The detections that need code of their own, one per file; every other detection is a rule
//! (data, see `rule/`). The engine finds these only through [`REGISTRY`].

use crate::detection::Constructor;

pub mod abnormally_high_cloud_security_group_api_calls;

/// Every detection by configuration key, in the order their alerts are produced.
pub const REGISTRY: &[(&str, Constructor)] =
    &[(abnormally_high_cloud_security_group_api_calls::KEY, abnormally_high_cloud_security_group_api_calls::construct)];
