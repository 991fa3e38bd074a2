//! Fields the operator accepts (so the reference's manifests apply unchanged) but does not act on yet: each one set
//! is named in a warning, which the webhook returns to the client (`kubectl` prints it) and the reconciler
//! publishes as a Warning Event when a new spec arrives. A user must never believe something happened that did not.
//! README's "Known limits" lists the same fields; remove an entry here when the feature lands.

use crate::api::FieldError;
use crate::resolve::Resolved;

/// One warning per field that is set and not acted on.
pub fn warnings(resolved: &Resolved) -> Vec<FieldError> {
    let spec = &resolved.cluster.spec;
    let mut out = Vec::new();
    let mut warn = |path: &str, message: &str| out.push(FieldError::new(path, message));

    // Deprecated in the reference too (it warns the same way): no check reads it.
    if spec.validation_policy.as_ref().is_some_and(|p| p.skip_xdr_dlog_file_validate) {
        warn(
            "spec.validationPolicy.skipXdrDlogFileValidate",
            "deprecated and has no effect: the XDR digest log is not validated by any check",
        );
    }

    super::work_dir::warnings(resolved, &mut out);
    out
}
