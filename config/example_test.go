package config

import (
	"os"
	"sort"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// keyPaths lists the dotted key paths of a YAML mapping (lists are leaves).
func keyPaths(n *yaml.Node, prefix string, out map[string]bool) {
	if n.Kind == yaml.DocumentNode {
		keyPaths(n.Content[0], prefix, out)
		return
	}
	if n.Kind != yaml.MappingNode {
		out[prefix] = true
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := n.Content[i].Value
		if prefix != "" {
			p = prefix + "." + p
		}
		keyPaths(n.Content[i+1], p, out)
	}
}

// The shipped example loads and sets every field, so it documents them all.
func TestExampleCoversEveryField(t *testing.T) {
	const path = "../configs/zoomprobe.yml"
	if _, err := LoadFile(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var ex, def yaml.Node
	if err := yaml.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	db, err := Default().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	yaml.Unmarshal(db, &def)
	have, want := map[string]bool{}, map[string]bool{}
	keyPaths(&ex, "", have)
	keyPaths(&def, "", want)
	var missing []string
	for p := range want {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		t.Errorf("configs/zoomprobe.yml does not document %s", p)
	}
}
