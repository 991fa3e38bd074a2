//! The thin write layer: server-side apply with one field manager, skipped when the object already carries
//! the hash of what we want (so an unchanged cluster costs no writes).
use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::desired;

pub const FIELD_MANAGER: &str = "aerospike-kubernetes-operator";
pub const ANNOTATION_DESIRED_HASH: &str = "aerospike.com/desired-hash";

/// Stamp `obj` with the hash of its desired content.
pub fn stamp<K: Resource + Serialize>(obj: &mut K) -> String {
    let hash = desired::desired_hash(&*obj);
    obj.meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ANNOTATION_DESIRED_HASH.into(), hash.clone());
    hash
}

/// Apply `obj` unless the cached copy already carries the same desired hash. Returns whether it wrote.
pub async fn apply<K>(api: &Api<K>, store: &Store<K>, mut obj: K) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let hash = stamp(&mut obj);
    let name = obj.meta().name.clone().unwrap_or_default();
    let namespace = obj.meta().namespace.clone();
    let mut key = ObjectRef::<K>::new(&name);
    if let Some(ns) = &namespace {
        key = key.within(ns);
    }
    if let Some(current) = store.get(&key) {
        let current_hash = current.meta().annotations.as_ref().and_then(|a| a.get(ANNOTATION_DESIRED_HASH));
        if current_hash == Some(&hash) {
            return Ok(false);
        }
    }
    patch(api, None, &name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&obj)).await?;
    Ok(true)
}

/// PATCH an object (or its `subresource`) without reading the answer into a typed object. The API server answers
/// with the whole object, managedFields included, which nothing here reads: deserializing it cost CPU and, with
/// many reconciles in flight, memory, only to drop it.
pub async fn patch<K, P>(
    api: &Api<K>,
    subresource: Option<&str>,
    name: &str,
    params: &PatchParams,
    patch: &Patch<P>,
) -> Result<(), kube::Error>
where
    K: Resource + Clone,
    P: Serialize + Debug,
{
    let request = kube::core::Request::new(api.resource_url());
    let request = match subresource {
        Some(sub) => request.patch_subresource(sub, name, params, patch),
        None => request.patch(name, params, patch),
    }
    .map_err(kube::Error::BuildRequest)?;
    api.clone().into_client().request::<serde::de::IgnoredAny>(request).await.map(|_| ())
}

/// Delete an object, treating "already gone" as success.
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Delete one incarnation of an object: only while its name still belongs to `uid` (a delete precondition), so a
/// decision taken on a cached copy never hits a newer object of the same name (a StatefulSet pod recreated since
/// the copy was cached). Returns false when the name now belongs to another incarnation; "already gone" is
/// success.
pub async fn delete_incarnation<K>(api: &Api<K>, name: &str, uid: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(true),
        // "Precondition failed: UID in precondition: ..., UID in object meta: ..."
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
