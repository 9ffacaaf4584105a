// The Kubernetes network-policy-api module, only for its CRD YAML (config/crd/standard): scripts/setup.sh
// downloads it from the Go module proxy (checked against go.sum) and copies the ClusterNetworkPolicy CRD and the
// module's LICENSE into .tools/crds/network-policy-api/, where test/unit/kubernetes/export.test.ts reads it.
module microseg.dev/tools/crds

go 1.24

require sigs.k8s.io/network-policy-api v0.3.0
