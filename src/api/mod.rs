//! The `asdb.aerospike.com/v1` API: the one Rust source of truth from which the CRD is generated.
mod access;
mod cluster;
#[cfg(test)]
mod fidelity;
mod field_error;
mod pod;
mod rack;
pub mod schema;
mod status;
mod storage;
pub mod v1beta1;

pub use access::*;
pub use cluster::*;
pub use field_error::FieldError;
pub use pod::*;
pub use rack::*;
pub use status::*;
pub use storage::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub const GROUP: &str = "asdb.aerospike.com";
/// Finalizer that guards storage clean-up on deletion (same name as the reference's).
pub const FINALIZER: &str = "asdb.aerospike.com/storage-finalizer";

/// Every CRD this operator serves, ready to apply.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crd = AerospikeCluster::crd();
    crd.metadata.annotations =
        Some([("aerospike-kubernetes-operator/version".to_string(), env!("CARGO_PKG_VERSION").to_string())].into());
    let mut all = vec![crd];
    for mut crd in
        [v1beta1::AerospikeBackupService::crd(), v1beta1::AerospikeBackup::crd(), v1beta1::AerospikeRestore::crd()]
    {
        crd.metadata.annotations =
            Some([("aerospike-kubernetes-operator/version".to_string(), env!("CARGO_PKG_VERSION").to_string())].into());
        all.push(crd);
    }
    all
}

/// The CRDs as one multi-document YAML stream (what `aerospike-kubernetes-operator crd` prints).
pub fn crds_yaml() -> String {
    // Long descriptions stay on one line (the default folds them at 80 columns).
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    crds()
        .iter()
        .map(|c| serde_saphyr::to_string_with_options(c, options.clone()).expect("CRD serialises"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn spec_schema() -> Value {
        let crd = serde_json::to_value(&crds()[0]).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
    }

    #[test]
    fn crd_fits_in_a_client_side_apply_annotation() {
        // Each CRD is its own object (and annotation); the backup kinds stay small so the stream stays quick to apply.
        let sizes: Vec<(String, usize)> =
            crds_yaml().split("---\n").zip(crds()).map(|(yaml, crd)| (crd.spec.names.kind, yaml.len())).collect();
        assert_eq!(sizes.len(), 4);
        for (kind, len) in &sizes {
            assert!(*len < 256 * 1024, "{kind} CRD is {len} bytes");
        }
        for (kind, len) in &sizes[1..] {
            assert!(*len < 64 * 1024, "{kind} CRD is {len} bytes");
        }
    }

    #[test]
    fn schema_checks_what_it_can() {
        let spec = spec_schema();
        assert_eq!(spec["properties"]["size"]["minimum"], json!(1.0));
        assert_eq!(spec["properties"]["size"]["maximum"], json!(256.0));
        let racks = &spec["properties"]["rackConfig"]["properties"]["racks"];
        assert_eq!(racks["x-kubernetes-list-type"], "map");
        assert_eq!(racks["x-kubernetes-list-map-keys"], json!(["id"]));
        assert_eq!(spec["properties"]["aerospikeConfig"]["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(spec["properties"]["maxUnavailable"]["x-kubernetes-int-or-string"], true);
        // Upstream descriptions are dropped from embedded types, ours are kept.
        let sidecars = &spec["properties"]["podSpec"]["properties"]["sidecars"];
        assert!(sidecars["description"].is_string());
        assert!(sidecars["items"]["properties"]["image"].get("description").is_none());
        assert!(spec["properties"]["size"]["description"].is_string());
    }

    #[test]
    fn scale_subresource_and_columns() {
        let crd = serde_json::to_value(&crds()[0]).unwrap();
        let v = &crd["spec"]["versions"][0];
        assert_eq!(v["subresources"]["scale"]["specReplicasPath"], ".spec.size");
        assert_eq!(v["subresources"]["scale"]["labelSelectorPath"], ".status.selector");
        let cols: Vec<_> =
            v["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
        for c in ["Size", "Ready", "Image", "Phase", "Age"] {
            assert!(cols.contains(&json!(c)), "missing column {c}");
        }
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["asc"]));
    }

    #[test]
    fn reference_manifest_round_trips() {
        // A manifest in the reference's shape, including fields its webhook writes.
        let manifest = json!({
            "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
            "metadata": {"name": "aerocluster", "namespace": "aerospike"},
            "spec": {
                "size": 2, "image": "aerospike/aerospike-server-enterprise:7.1.0.0",
                "maxUnavailable": "50%", "disablePDB": false, "k8sNodeBlockList": ["n1"],
                "storage": {"filesystemVolumePolicy": {"initMethod": "deleteFiles", "cascadeDelete": true},
                    "volumes": [{"name": "workdir", "source": {"persistentVolume": {"storageClass": "ssd",
                        "volumeMode": "Filesystem", "size": "1Gi"}}, "aerospike": {"path": "/opt/aerospike"}}]},
                "rackConfig": {"namespaces": ["test"], "racks": [{"id": 1, "zone": "us-a",
                    "effectiveAerospikeConfig": {"service": {}}}]},
                "podSpec": {"multiPodPerHost": true, "nodeSelector": {"a": "b"}},
                "aerospikeConfig": {"service": {"feature-key-file": "/etc/aerospike/secret/features.conf"}},
                "operatorClientCert": {"tlsClientName": "x"},
                "enableRackIDOverride": false
            }
        });
        let obj: AerospikeCluster = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(obj.spec.size, 2);
        assert_eq!(obj.spec.pod_spec().scheduling.node_selector["a"], "b");
        let back = serde_json::to_value(&obj).unwrap();
        assert_eq!(back["spec"], manifest["spec"]);
    }
}

#[cfg(test)]
mod required_tests {
    use super::*;
    use serde_json::Value;

    fn collect(path: &str, v: &Value, out: &mut Vec<String>) {
        if let Some(req) = v.get("required").and_then(Value::as_array) {
            for r in req {
                out.push(format!("{path}.{}", r.as_str().unwrap()));
            }
        }
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, child) in props {
                collect(&format!("{path}.{k}"), child, out);
            }
        }
        if let Some(items) = v.get("items") {
            collect(&format!("{path}[]"), items, out);
        }
    }

    /// Only what the reference requires may be required by our schema: an accidental `required` (an Option
    /// field whose schema is overridden) would make the API server refuse ordinary manifests.
    #[test]
    fn only_intended_fields_are_required() {
        let crd = serde_json::to_value(&crds()[0]).unwrap();
        let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut ours = Vec::new();
        for top in ["spec", "status"] {
            collect(top, &root["properties"][top], &mut ours);
        }
        // Required fields inside embedded Kubernetes types are upstream's business.
        let embedded = [
            ".sidecars[]",
            ".initContainers[]",
            ".affinity.",
            ".tolerations",
            ".securityContext.",
            ".dnsConfig.",
            ".resources.",
            ".selector.",
            ".emptyDir.",
            ".secret.",
            ".configMap.",
            ".hostPath",
            ".conditions[]",
            ".imagePullSecrets[]",
        ];
        ours.retain(|p| !embedded.iter().any(|e| p.contains(e)));
        ours.sort();
        let expected = [
            "spec.aerospikeAccessControl.adminPolicy.timeout",
            "spec.aerospikeConfig", // required by the reference too
            "spec.aerospikeAccessControl.roles[].name",
            "spec.aerospikeAccessControl.roles[].privileges",
            "spec.aerospikeAccessControl.users",
            "spec.aerospikeAccessControl.users[].name",
            "spec.aerospikeAccessControl.users[].roles",
            "spec.image",
            "spec.operations[].id",
            "spec.operations[].kind",
            "spec.operatorClientCert.secretCertSource.caCertsSource.secretName", // the reference's too
            "spec.operatorClientCert.secretCertSource.secretName",               // the reference's too
            "spec.rackConfig.racks[].id",
            "spec.rackConfig.racks[].storage.volumes[].aerospike.path",
            "spec.rackConfig.racks[].storage.volumes[].initContainers[].containerName",
            "spec.rackConfig.racks[].storage.volumes[].initContainers[].path",
            "spec.rackConfig.racks[].storage.volumes[].name",
            "spec.rackConfig.racks[].storage.volumes[].sidecars[].containerName",
            "spec.rackConfig.racks[].storage.volumes[].sidecars[].path",
            "spec.rackConfig.racks[].storage.volumes[].source.persistentVolume.size",
            "spec.rackConfig.racks[].storage.volumes[].source.persistentVolume.volumeMode",
            "spec.size",
            "spec.storage.volumes[].aerospike.path",
            "spec.storage.volumes[].initContainers[].containerName",
            "spec.storage.volumes[].initContainers[].path",
            "spec.storage.volumes[].name",
            "spec.storage.volumes[].sidecars[].containerName",
            "spec.storage.volumes[].sidecars[].path",
            "spec.storage.volumes[].source.persistentVolume.size",
            "spec.storage.volumes[].source.persistentVolume.storageClass",
            "spec.storage.volumes[].source.persistentVolume.volumeMode",
            "spec.rackConfig.racks[].storage.volumes[].source.persistentVolume.storageClass",
            "spec.validationPolicy.skipWorkDirValidate",
            // Copies of the spec (the reference requires the same there; storageClass is not required in copies).
            "spec.rackConfig.racks[].effectiveStorage.volumes[].aerospike.path",
            "spec.rackConfig.racks[].effectiveStorage.volumes[].name",
            "spec.rackConfig.racks[].effectiveStorage.volumes[].source.persistentVolume.size",
            "spec.rackConfig.racks[].effectiveStorage.volumes[].source.persistentVolume.volumeMode",
            "status.aerospikeAccessControl.adminPolicy.timeout",
            "status.aerospikeAccessControl.roles[].name",
            "status.aerospikeAccessControl.roles[].privileges",
            "status.aerospikeAccessControl.users",
            "status.aerospikeAccessControl.users[].name",
            "status.aerospikeAccessControl.users[].roles",
            "status.operations[].id",
            "status.operations[].kind",
            "status.rackConfig.racks[].id",
            "status.storage.volumes[].aerospike.path",
            "status.storage.volumes[].name",
            "status.storage.volumes[].source.persistentVolume.size",
            "status.storage.volumes[].source.persistentVolume.volumeMode",
            "status.validationPolicy.skipWorkDirValidate",
        ];
        let missing_or_extra: Vec<_> = ours.iter().filter(|p| !expected.contains(&p.as_str())).collect();
        assert!(missing_or_extra.is_empty(), "unexpected required fields: {missing_or_extra:#?}");
    }
}

#[cfg(test)]
mod length_tests {
    use super::*;
    use serde_json::Value;

    /// Free strings under `v` without a maxLength: (path). Embedded Kubernetes types (their own schema, bounded by
    /// the API server's own validation where it applies), enums and int-or-string values are not free strings.
    fn unbounded(path: &str, v: &Value, out: &mut Vec<String>) {
        const EMBEDDED: &[&str] = &[
            ".podSpec.sidecars",
            ".podSpec.initContainers",
            ".affinity",
            ".tolerations",
            ".securityContext",
            ".dnsConfig",
            ".resources",
            ".selector",
            ".emptyDir",
            ".secret",
            ".configMap",
            ".hostPath",
            ".imagePullSecrets",
        ];
        if EMBEDDED.iter().any(|e| path.ends_with(e)) {
            return;
        }
        let is_string = v.get("type").and_then(Value::as_str) == Some("string");
        let bounded = v.get("maxLength").is_some() || v.get("enum").is_some();
        if is_string && !bounded {
            out.push(path.to_string());
        }
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, child) in props {
                unbounded(&format!("{path}.{k}"), child, out);
            }
        }
        if let Some(items) = v.get("items") {
            unbounded(&format!("{path}[]"), items, out);
        }
        if let Some(values) = v.get("additionalProperties").filter(|a| a.is_object()) {
            unbounded(&format!("{path}.*"), values, out);
        }
    }

    /// Every free string of the spec has a maxLength: an object with 10,000-character names is refused by the API
    /// server before any webhook or reconcile sees it.
    #[test]
    fn every_free_string_of_the_spec_is_bounded() {
        let crd = serde_json::to_value(&crds()[0]).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let mut out = Vec::new();
        unbounded("spec", spec, &mut out);
        assert!(out.is_empty(), "strings without maxLength: {out:#?}");
        let props = &spec["properties"];
        assert_eq!(props["image"]["maxLength"], 1024);
        let volume = &props["storage"]["properties"]["volumes"]["items"]["properties"];
        assert_eq!(volume["name"]["maxLength"], 63);
        assert_eq!(volume["source"]["properties"]["persistentVolume"]["properties"]["storageClass"]["maxLength"], 253);
        let user = &props["aerospikeAccessControl"]["properties"]["users"]["items"]["properties"];
        assert_eq!(user["secretName"]["maxLength"], 253);
        assert_eq!(props["rackConfig"]["properties"]["namespaces"]["items"]["maxLength"], 63);
    }
}
