//! The caches' objects by the cluster they belong to (their namespace and `LABEL_CR` label), kept beside each
//! reflector from the same watch events.
//!
//! Why: kube's reflector `Store` can only be scanned whole. A reconcile that scanned every cached pod, StatefulSet
//! and Service for its own few made the operator's CPU grow with the square of the clusters: at 300 clusters about
//! 2,400 objects per reconcile, each compared through an allocated copy of its namespace (a CPU profile of a
//! 300-cluster creation: `observe_pods` and the stale-Service scan were a fifth of the operator's CPU). With the
//! index a reconcile reads its own objects only.
//!
//! The index holds names only; the objects stay in the store, read through it, so the two cannot disagree on an
//! object's content. It follows the store's own rules for events: an initial list (`Init`, `InitApply`...,
//! `InitDone`) replaces the whole index at its end, as it replaces the store.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::desired;

type Key = (String, String);

/// Names of the cached objects of each cluster (`(namespace, cluster)`).
#[derive(Clone, Default)]
pub struct ByCluster {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    live: HashMap<Key, BTreeSet<String>>,
    /// The index being built by an initial list, swapped in at its end.
    listing: Option<HashMap<Key, BTreeSet<String>>>,
}

/// The cluster an object belongs to, and its name.
fn key_of<K: Resource>(obj: &K) -> Option<(Key, String)> {
    let meta = obj.meta();
    let cr = meta.labels.as_ref()?.get(desired::LABEL_CR)?;
    Some(((meta.namespace.clone()?, cr.clone()), meta.name.clone()?))
}

impl ByCluster {
    /// Follows one watch event (after the reflector has applied it to the store).
    pub fn observe<K: Resource>(&self, event: &watcher::Event<K>) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Init => inner.listing = Some(HashMap::new()),
            watcher::Event::InitApply(obj) => {
                if let (Some(listing), Some((key, name))) = (inner.listing.as_mut(), key_of(obj)) {
                    listing.entry(key).or_default().insert(name);
                }
            }
            watcher::Event::InitDone => {
                if let Some(listing) = inner.listing.take() {
                    inner.live = listing;
                }
            }
            watcher::Event::Apply(obj) => {
                if let Some((key, name)) = key_of(obj) {
                    inner.live.entry(key).or_default().insert(name);
                }
            }
            watcher::Event::Delete(obj) => {
                if let Some((key, name)) = key_of(obj)
                    && let Some(names) = inner.live.get_mut(&key)
                {
                    names.remove(&name);
                    if names.is_empty() {
                        inner.live.remove(&key);
                    }
                }
            }
        }
    }

    /// [`Self::observe`] as a stream inspector: what `inspect` on a reflector's stream takes (errors pass by).
    pub fn observer<K: Resource, E>(&self) -> impl FnMut(&Result<watcher::Event<K>, E>) + use<K, E> {
        let index = self.clone();
        move |event| {
            if let Ok(event) = event {
                index.observe(event);
            }
        }
    }

    /// The cluster's objects in `store`, by name. An object whose label moved to another cluster (its name is
    /// still listed under the old one) is left out: its labels are checked against the cluster.
    pub fn get<K>(&self, store: &Store<K>, namespace: &str, cluster: &str) -> Vec<Arc<K>>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        let names: Vec<String> = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let key = (namespace.to_string(), cluster.to_string());
            inner.live.get(&key).map(|n| n.iter().cloned().collect()).unwrap_or_default()
        };
        names
            .into_iter()
            .filter_map(|name| store.get(&ObjectRef::new(&name).within(namespace)))
            .filter(|obj| {
                obj.meta().labels.as_ref().and_then(|l| l.get(desired::LABEL_CR)).map(String::as_str) == Some(cluster)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::reflector;

    fn pod(ns: &str, name: &str, cr: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "labels": {desired::LABEL_CR: cr}}
        }))
        .unwrap()
    }

    /// Feeds the event to the store (as the reflector does) and then to the index.
    fn feed(writer: &mut reflector::store::Writer<Pod>, index: &ByCluster, event: watcher::Event<Pod>) {
        writer.apply_watcher_event(&event);
        index.observe(&event);
    }

    fn names(pods: Vec<Arc<Pod>>) -> Vec<String> {
        let mut n: Vec<String> = pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        n.sort();
        n
    }

    #[test]
    fn a_cluster_gets_its_own_objects_only() {
        let (store, mut writer) = reflector::store();
        let index = ByCluster::default();
        for (ns, name, cr) in [("a", "c-0-0", "c"), ("a", "c-0-1", "c"), ("a", "d-0-0", "d"), ("b", "c-0-0", "c")] {
            feed(&mut writer, &index, watcher::Event::Apply(pod(ns, name, cr)));
        }
        assert_eq!(names(index.get(&store, "a", "c")), ["c-0-0", "c-0-1"]);
        assert_eq!(names(index.get(&store, "b", "c")), ["c-0-0"]);
        assert_eq!(names(index.get(&store, "a", "d")), ["d-0-0"]);
        assert!(index.get(&store, "b", "d").is_empty());

        feed(&mut writer, &index, watcher::Event::Delete(pod("a", "c-0-1", "c")));
        assert_eq!(names(index.get(&store, "a", "c")), ["c-0-0"]);
    }

    #[test]
    fn a_relabelled_object_leaves_its_old_cluster() {
        let (store, mut writer) = reflector::store();
        let index = ByCluster::default();
        feed(&mut writer, &index, watcher::Event::Apply(pod("a", "x", "c")));
        feed(&mut writer, &index, watcher::Event::Apply(pod("a", "x", "d")));
        assert!(index.get(&store, "a", "c").is_empty());
        assert_eq!(names(index.get(&store, "a", "d")), ["x"]);
    }

    #[test]
    fn a_relist_drops_what_was_deleted_while_disconnected() {
        let (store, mut writer) = reflector::store();
        let index = ByCluster::default();
        feed(&mut writer, &index, watcher::Event::Apply(pod("a", "c-0-0", "c")));
        feed(&mut writer, &index, watcher::Event::Apply(pod("a", "c-0-1", "c")));
        // The watch broke; c-0-1 was deleted meanwhile; the re-list sees c-0-0 and a new c-0-2.
        feed(&mut writer, &index, watcher::Event::Init);
        feed(&mut writer, &index, watcher::Event::InitApply(pod("a", "c-0-0", "c")));
        feed(&mut writer, &index, watcher::Event::InitApply(pod("a", "c-0-2", "c")));
        // Until the list ends the store and the index still answer from before.
        assert_eq!(names(index.get(&store, "a", "c")), ["c-0-0", "c-0-1"]);
        feed(&mut writer, &index, watcher::Event::InitDone);
        assert_eq!(names(index.get(&store, "a", "c")), ["c-0-0", "c-0-2"]);
    }
}
