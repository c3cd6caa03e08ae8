// Command validate checks rendered Kubernetes manifests (the output of `helm template`) offline.
//
// It reads a multi-document YAML stream from stdin and decodes every document strictly with the
// client-go scheme: unknown fields, wrong types and duplicate keys fail. Kinds outside that scheme
// fail too, except the ones allowed here explicitly (ServiceMonitor, decoded strictly into the
// subset of its schema that the chart uses). On top of the schema it checks the chart's own rules:
// every Deployment has probes, resource requests and limits, and runs as non-root on a read-only
// root filesystem; Services, HPAs and PDBs point at Deployments of the same stream.
//
// It exits 0 and prints one summary line when every document passes, and 1 with one line per
// problem naming the document (its "# Source:" template, kind and name) otherwise.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// document is one YAML document of the stream with what identifies it in messages.
type document struct {
	index  int
	source string
	raw    []byte
	kind   string
	name   string
	obj    any
}

func (d *document) label() string {
	src := d.source
	if src == "" {
		src = "(no Source comment)"
	}
	id := d.kind
	if d.name != "" {
		id += "/" + d.name
	}
	if id == "" {
		id = "?"
	}
	return fmt.Sprintf("document %d [%s] %s", d.index, src, id)
}

var sourceLine = regexp.MustCompile(`(?m)^# Source: (.+)$`)

// ServiceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the chart renders.
// Decoding is strict, so a field outside this subset fails like an unknown field would.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

// ServiceMonitorSpec is the spec subset of a ServiceMonitor.
type ServiceMonitorSpec struct {
	JobLabel          string                `json:"jobLabel,omitempty"`
	Selector          metav1.LabelSelector  `json:"selector"`
	NamespaceSelector *NamespaceSelector    `json:"namespaceSelector,omitempty"`
	Endpoints         []ServiceMonitorPoint `json:"endpoints"`
}

// NamespaceSelector says where a ServiceMonitor looks for Services.
type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

// ServiceMonitorPoint is one scraped endpoint.
type ServiceMonitorPoint struct {
	Port          string             `json:"port"`
	Path          string             `json:"path,omitempty"`
	Scheme        string             `json:"scheme,omitempty"`
	Interval      string             `json:"interval,omitempty"`
	ScrapeTimeout string             `json:"scrapeTimeout,omitempty"`
	HonorLabels   bool               `json:"honorLabels,omitempty"`
	Authorization *SafeAuthorization `json:"authorization,omitempty"`
}

// SafeAuthorization is the Authorization header a ServiceMonitor sends, from a Secret.
type SafeAuthorization struct {
	Type        string                    `json:"type,omitempty"`
	Credentials *corev1.SecretKeySelector `json:"credentials,omitempty"`
}

// allowedCustom are the kinds outside the client-go scheme that may appear, with their decoders.
var allowedCustom = map[string]func([]byte) (any, string, error){
	"monitoring.coreos.com/v1/ServiceMonitor": func(raw []byte) (any, string, error) {
		var sm ServiceMonitor
		if err := yaml.UnmarshalStrict(raw, &sm); err != nil {
			return nil, "", err
		}
		if len(sm.Spec.Endpoints) == 0 {
			return nil, sm.Name, errors.New("spec.endpoints is empty")
		}
		return &sm, sm.Name, nil
	},
}

func main() {
	docs, err := split(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "validate: cannot read the stream: %v\n", err)
		os.Exit(1)
	}
	if len(docs) == 0 {
		fmt.Fprintln(os.Stderr, "validate: no documents on stdin")
		os.Exit(1)
	}
	var problems []string
	report := func(d *document, format string, args ...any) {
		problems = append(problems, d.label()+": "+fmt.Sprintf(format, args...))
	}
	decoder := kjson.NewSerializerWithOptions(
		kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true},
	)
	for _, d := range docs {
		decode(decoder, d, report)
	}
	if len(problems) == 0 {
		checkStream(docs, report)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "FAIL "+p)
		}
		fmt.Fprintf(os.Stderr, "validate: %d problem(s) in %d document(s)\n", len(problems), len(docs))
		os.Exit(1)
	}
	counts := map[string]int{}
	for _, d := range docs {
		counts[d.kind]++
	}
	kinds := make([]string, 0, len(counts))
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	fmt.Printf("validate: %d documents ok (%s)\n", len(docs), strings.Join(kinds, " "))
}

// split cuts the stream into non-empty documents, remembering each one's "# Source:" template.
func split(r io.Reader) ([]*document, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []*document
	for i := 1; ; i++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if isBlank(raw) {
			continue
		}
		d := &document{index: i, raw: raw}
		if m := sourceLine.FindSubmatch(raw); m != nil {
			d.source = string(m[1])
		}
		docs = append(docs, d)
	}
}

func isBlank(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}

// decode decodes one document strictly; it fills kind, name and obj, or reports why not.
func decode(decoder runtime.Decoder, d *document, report func(*document, string, ...any)) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(d.raw, &meta); err != nil {
		report(d, "not YAML: %v", err)
		return
	}
	d.kind, d.name = meta.Kind, meta.Metadata.Name
	if meta.APIVersion == "" || meta.Kind == "" {
		report(d, "apiVersion and kind are required")
		return
	}
	if d.name == "" {
		report(d, "metadata.name is required")
	}
	if custom, ok := allowedCustom[meta.APIVersion+"/"+meta.Kind]; ok {
		obj, _, err := custom(d.raw)
		if err != nil {
			report(d, "invalid %s: %v", meta.Kind, err)
			return
		}
		d.obj = obj
		return
	}
	obj, _, err := decoder.Decode(d.raw, nil, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) {
			report(d, "kind %s %s is neither built in nor allowed", meta.APIVersion, meta.Kind)
			return
		}
		report(d, "%v", err)
		return
	}
	d.obj = obj
}

// checkStream applies the chart's rules to the decoded documents.
func checkStream(docs []*document, report func(*document, string, ...any)) {
	deployments := map[string]*appsv1.Deployment{}
	configMaps := map[string]bool{}
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *appsv1.Deployment:
			deployments[o.Name] = o
		case *corev1.ConfigMap:
			configMaps[o.Name] = true
		}
	}
	services := map[string]*corev1.Service{}
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *appsv1.Deployment:
			checkDeployment(d, o, configMaps, report)
		case *corev1.Service:
			services[o.Name] = o
			if !selectsAny(o.Spec.Selector, deployments) {
				report(d, "selector %v matches no Deployment's pods", o.Spec.Selector)
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
			if err != nil || o.Spec.Selector == nil {
				report(d, "bad selector: %v", err)
				continue
			}
			if !selectorMatchesAny(sel, deployments) {
				report(d, "selector %s matches no Deployment's pods", sel)
			}
			if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
				report(d, "exactly one of minAvailable and maxUnavailable must be set")
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := o.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || deployments[ref.Name] == nil {
				report(d, "scaleTargetRef %s %s/%s is not a Deployment of this release",
					ref.APIVersion, ref.Kind, ref.Name)
			}
			if o.Spec.MinReplicas != nil && *o.Spec.MinReplicas > o.Spec.MaxReplicas {
				report(d, "minReplicas %d > maxReplicas %d", *o.Spec.MinReplicas, o.Spec.MaxReplicas)
			}
			if len(o.Spec.Metrics) == 0 {
				report(d, "no metrics")
			}
		}
	}
	for _, d := range docs {
		if sm, ok := d.obj.(*ServiceMonitor); ok {
			checkServiceMonitor(d, sm, services, report)
		}
	}
}

func checkDeployment(
	d *document,
	dep *appsv1.Deployment,
	configMaps map[string]bool,
	report func(*document, string, ...any),
) {
	spec := dep.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || dep.Spec.Selector == nil {
		report(d, "bad selector: %v", err)
	} else if !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		report(d, "selector %s does not match the pod template's labels", sel)
	}
	if len(spec.Containers) == 0 {
		report(d, "no containers")
	}
	podNonRoot := spec.SecurityContext != nil && isTrue(spec.SecurityContext.RunAsNonRoot)
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsUser != nil &&
		*spec.SecurityContext.RunAsUser == 0 {
		report(d, "pod securityContext.runAsUser is 0 (root)")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] && !isTrue(v.ConfigMap.Optional) {
			report(d, "volume %s: ConfigMap %s is not part of the release", v.Name, v.ConfigMap.Name)
		}
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		where := "container " + c.Name
		if c.Image == "" {
			report(d, "%s: no image", where)
		}
		sc := c.SecurityContext
		if sc == nil {
			report(d, "%s: no securityContext", where)
		} else {
			if !podNonRoot && !isTrue(sc.RunAsNonRoot) {
				report(d, "%s: runAsNonRoot is not true (pod or container)", where)
			}
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				report(d, "%s: runAsUser is 0 (root)", where)
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				report(d, "%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				report(d, "%s: allowPrivilegeEscalation is not false", where)
			}
			if isTrue(sc.Privileged) {
				report(d, "%s: privileged", where)
			}
		}
		for _, kind := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[kind]; !ok {
				report(d, "%s: no %s request", where, kind)
			}
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			report(d, "%s: no memory limit", where)
		}
		for kind, req := range c.Resources.Requests {
			if lim, ok := c.Resources.Limits[kind]; ok && req.Cmp(lim) > 0 {
				report(d, "%s: %s request %s exceeds its limit %s", where, kind, req.String(), lim.String())
			}
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			if p.Name != "" {
				ports[p.Name] = true
			}
		}
		isInit := false
		for _, ic := range spec.InitContainers {
			if ic.Name == c.Name {
				isInit = true
			}
		}
		if !isInit {
			if c.LivenessProbe == nil {
				report(d, "%s: no livenessProbe", where)
			}
			if c.ReadinessProbe == nil {
				report(d, "%s: no readinessProbe", where)
			}
			for name, probe := range map[string]*corev1.Probe{
				"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe,
				"startupProbe": c.StartupProbe,
			} {
				checkProbe(d, where+": "+name, probe, ports, report)
			}
		}
		mounted := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				report(d, "%s: volumeMount %s has no volume", where, m.Name)
			}
			mounted[m.MountPath] = true
		}
		if sc != nil && isTrue(sc.ReadOnlyRootFilesystem) && !mounted["/tmp"] {
			report(d, "%s: read-only root filesystem but nothing mounted at /tmp", where)
		}
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil && !configMaps[from.ConfigMapRef.Name] &&
				!isTrue(from.ConfigMapRef.Optional) {
				report(d, "%s: envFrom ConfigMap %s is not part of the release", where,
					from.ConfigMapRef.Name)
			}
		}
		seen := map[string]bool{}
		for _, e := range c.Env {
			if seen[e.Name] {
				report(d, "%s: env %s set twice", where, e.Name)
			}
			seen[e.Name] = true
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil &&
				!configMaps[e.ValueFrom.ConfigMapKeyRef.Name] {
				report(d, "%s: env %s: ConfigMap %s is not part of the release", where, e.Name,
					e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	}
}

func checkProbe(
	d *document, where string, p *corev1.Probe, ports map[string]bool,
	report func(*document, string, ...any),
) {
	if p == nil {
		return
	}
	handlers := 0
	if p.HTTPGet != nil {
		handlers++
		if p.HTTPGet.Port.Type == intstr.String && !ports[p.HTTPGet.Port.StrVal] {
			report(d, "%s: httpGet port %q is not a named container port", where, p.HTTPGet.Port.StrVal)
		}
	}
	if p.Exec != nil {
		handlers++
		if len(p.Exec.Command) == 0 {
			report(d, "%s: exec without a command", where)
		}
	}
	if p.TCPSocket != nil {
		handlers++
	}
	if p.GRPC != nil {
		handlers++
	}
	if handlers != 1 {
		report(d, "%s: needs exactly one handler, has %d", where, handlers)
	}
}

func checkServiceMonitor(
	d *document, sm *ServiceMonitor, services map[string]*corev1.Service,
	report func(*document, string, ...any),
) {
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		report(d, "bad selector: %v", err)
		return
	}
	var matched []*corev1.Service
	for _, svc := range services {
		if sel.Matches(labels.Set(svc.Labels)) {
			matched = append(matched, svc)
		}
	}
	if len(matched) == 0 {
		report(d, "selector %s matches no Service of this release", sel)
		return
	}
	for _, ep := range sm.Spec.Endpoints {
		found := false
		for _, svc := range matched {
			for _, p := range svc.Spec.Ports {
				if p.Name == ep.Port {
					found = true
				}
			}
		}
		if !found {
			report(d, "endpoint port %q is not a port name of the selected Service(s)", ep.Port)
		}
	}
}

func selectsAny(selector map[string]string, deployments map[string]*appsv1.Deployment) bool {
	if len(selector) == 0 {
		return false
	}
	return selectorMatchesAny(labels.SelectorFromSet(selector), deployments)
}

func selectorMatchesAny(sel labels.Selector, deployments map[string]*appsv1.Deployment) bool {
	for _, dep := range deployments {
		if sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
			return true
		}
	}
	return false
}

func isTrue(b *bool) bool { return b != nil && *b }
