// netpol-oracle answers Kubernetes NetworkPolicy verdicts with cyclonus's simulator
// (github.com/mattfenwick/cyclonus pkg/matcher), an evaluator microseg did not write. microseg's
// differential test (test/unit/kubernetes/oracle.test.ts) sends it a cluster and flows on stdin and
// compares its verdicts with the engine's NetworkPolicy layer.
//
// Input (JSON on stdin):
//
//	{"namespaces": {"NS": {"labels": {...}}},
//	 "pods": [{"namespace": "NS", "name": "P", "labels": {...}, "ip": "10.1.0.5",
//	           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}],
//	 "policies": [<networking.k8s.io/v1 NetworkPolicy objects>],
//	 "flows": [{"source": "NS/P" | "IP", "destination": "NS/P" | "IP", "protocol": "TCP", "port": 80}]}
//
// Output (JSON on stdout): {"verdicts": [{"allowed": bool, "ingress": bool, "egress": bool}]}, one per flow.
//
// What this program adds around the matcher, as the apiserver and a cluster would:
//   - policyTypes defaulting (SetDefaults_NetworkPolicy: Ingress, plus Egress when len(spec.egress) != 0),
//     because the matcher panics on a policy without policyTypes;
//   - the implied namespace label kubernetes.io/metadata.name;
//   - the resolved port name of a flow: the destination pod's container port with the flow's number and
//     protocol (the matcher compares a named port with that name).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

type namespace struct {
	Labels map[string]string `json:"labels"`
}

type port struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

type pod struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
	IP        string            `json:"ip"`
	Ports     []port            `json:"ports"`
}

type flow struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Protocol    string `json:"protocol"`
	Port        int    `json:"port"`
}

type request struct {
	Namespaces map[string]namespace          `json:"namespaces"`
	Pods       []pod                         `json:"pods"`
	Policies   []*networkingv1.NetworkPolicy `json:"policies"`
	Flows      []flow                        `json:"flows"`
}

type verdict struct {
	Allowed bool `json:"allowed"`
	Ingress bool `json:"ingress"`
	Egress  bool `json:"egress"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintf(os.Stderr, "netpol-oracle: bad input: %v\n", err)
		os.Exit(2)
	}
	for _, np := range req.Policies {
		if len(np.Spec.PolicyTypes) == 0 {
			np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(np.Spec.Egress) != 0 {
				np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			}
		}
	}
	policy := matcher.BuildNetworkPolicies(false, req.Policies)
	byName := map[string]*pod{}
	for i := range req.Pods {
		p := &req.Pods[i]
		byName[p.Namespace+"/"+p.Name] = p
	}
	peer := func(ref string) (*matcher.TrafficPeer, *pod) {
		p, ok := byName[ref]
		if !ok {
			return &matcher.TrafficPeer{IP: ref}, nil
		}
		nsLabels := map[string]string{}
		for k, v := range req.Namespaces[p.Namespace].Labels {
			nsLabels[k] = v
		}
		nsLabels["kubernetes.io/metadata.name"] = p.Namespace
		return &matcher.TrafficPeer{IP: p.IP, Internal: &matcher.InternalPeer{PodLabels: p.Labels, NamespaceLabels: nsLabels, Namespace: p.Namespace}}, p
	}
	out := struct {
		Verdicts []verdict `json:"verdicts"`
	}{Verdicts: []verdict{}}
	for _, f := range req.Flows {
		src, _ := peer(f.Source)
		dst, dstPod := peer(f.Destination)
		portName := ""
		if dstPod != nil {
			for _, cp := range dstPod.Ports {
				if cp.Port == f.Port && cp.Protocol == f.Protocol {
					portName = cp.Name
				}
			}
		}
		r := policy.IsTrafficAllowed(&matcher.Traffic{Source: src, Destination: dst, ResolvedPort: f.Port, ResolvedPortName: portName, Protocol: v1.Protocol(f.Protocol)})
		out.Verdicts = append(out.Verdicts, verdict{Allowed: r.IsAllowed(), Ingress: r.Ingress.IsAllowed(), Egress: r.Egress.IsAllowed()})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "netpol-oracle: %v\n", err)
		os.Exit(1)
	}
}
