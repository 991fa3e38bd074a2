// crfloor: the controller-runtime memory floor of `cargo xtask bench --against-floors` (issue 16).
//
// A manager built with controller-runtime at the version the reference operator uses, caching exactly what the
// reference's manager caches (AerospikeCluster, StatefulSets, Services, ConfigMaps, PDBs, PVCs, and pods labelled
// app=aerospike-cluster, all namespaces) and doing nothing else: no controllers, no webhook, no metrics server, no
// leader election. The reference can only be heavier. AerospikeCluster is a minimal type whose spec and status
// stay raw JSON, lighter than the reference's typed structs, so this stays a floor.
//
// Prints "synced" once every informer has synced, then runs until SIGTERM.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

var groupVersion = schema.GroupVersion{Group: "asdb.aerospike.com", Version: "v1"}

// AerospikeCluster keeps spec and status as raw JSON (see the file comment).
type AerospikeCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              json.RawMessage `json:"spec,omitempty"`
	Status            json.RawMessage `json:"status,omitempty"`
}

func (in *AerospikeCluster) DeepCopyObject() runtime.Object {
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = append(json.RawMessage(nil), in.Spec...)
	out.Status = append(json.RawMessage(nil), in.Status...)
	return &out
}

type AerospikeClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AerospikeCluster `json:"items"`
}

func (in *AerospikeClusterList) DeepCopyObject() runtime.Object {
	out := *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]AerospikeCluster, len(in.Items))
	for i := range in.Items {
		out.Items[i] = *in.Items[i].DeepCopyObject().(*AerospikeCluster)
	}
	return &out
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "crfloor:", err)
		os.Exit(1)
	}
}

func run() error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	scheme.AddKnownTypes(groupVersion, &AerospikeCluster{}, &AerospikeClusterList{})
	metav1.AddToGroupVersion(scheme, groupVersion)

	// As the reference's cmd/main.go: pods only with its app label, everything else unfiltered.
	opts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{"app": "aerospike-cluster"})},
	}}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Cache:                  opts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	objects := []client.Object{
		&AerospikeCluster{}, &appsv1.StatefulSet{}, &corev1.Service{}, &corev1.ConfigMap{},
		&policyv1.PodDisruptionBudget{}, &corev1.PersistentVolumeClaim{}, &corev1.Pod{},
	}
	for _, obj := range objects {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
	}
	go func() {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			fmt.Println("synced")
		}
	}()
	return mgr.Start(ctx)
}
