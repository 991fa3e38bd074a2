//! The scorecard configuration: scorecard/config.yaml, and the copy the bundle ships (bundle/tests/scorecard). The
//! static checks its tests make are [`super::bundle::scorecard`].
use std::collections::BTreeMap;

use serde::Serialize;

use crate::project::SCORECARD_IMAGE;

#[derive(Serialize)]
pub struct Configuration {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    metadata: BTreeMap<String, String>,
    stages: Vec<Stage>,
}

#[derive(Serialize)]
struct Stage {
    parallel: bool,
    tests: Vec<TestConfig>,
}

#[derive(Serialize)]
struct TestConfig {
    entrypoint: Vec<String>,
    image: String,
    labels: BTreeMap<String, String>,
}

/// The scorecard tests: (entrypoint name, suite).
pub const TESTS: &[(&str, &str)] = &[
    ("basic-check-spec", "basic"),
    ("olm-bundle-validation", "olm"),
    ("olm-crds-have-validation", "olm"),
    ("olm-crds-have-resources", "olm"),
    ("olm-spec-descriptors", "olm"),
    ("olm-status-descriptors", "olm"),
];

/// bundle/tests/scorecard/config.yaml (scorecard.operatorframework.io/v1alpha3).
pub fn config() -> Configuration {
    Configuration {
        api_version: "scorecard.operatorframework.io/v1alpha3".into(),
        kind: "Configuration".into(),
        metadata: BTreeMap::from([("name".to_string(), "config".to_string())]),
        stages: vec![Stage {
            parallel: true,
            tests: TESTS
                .iter()
                .map(|(test, suite)| TestConfig {
                    entrypoint: vec!["scorecard-test".into(), test.to_string()],
                    image: SCORECARD_IMAGE.into(),
                    labels: BTreeMap::from([
                        ("suite".to_string(), suite.to_string()),
                        ("test".to_string(), format!("{test}-test")),
                    ]),
                })
                .collect(),
        }],
    }
}
