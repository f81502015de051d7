package config

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParse feeds hostile YAML to the config parser: it must not panic
// (aliases, deep nesting, odd scalars), and a config it accepts must
// survive Marshal and Parse unchanged, as check-config --print promises.
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	if b, err := os.ReadFile("../configs/zoomprobe.yml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"capture:\n  workers: 2\n  interfaces: [eth1]\nevent_log:\n  path: /var/lib/zoomprobe/events.jsonl\n",
		"probes:\n  proxy:\n    url: http://u:p@proxy.example:3128\n    bypass: [zoom.us]\n  dns:\n    resolvers: ['[::1]:53']\n",
		"a: &a [*a]\n",
		"flows:\n  max_flows: 1e9\n  tcp_timeout: -5s\n",
		"zoom:\n  watch:\n    - {name: x, ports: [0, 65536]}\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("marshalled config rejected: %v\n%s", err, out)
		}
		out2, err := c2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\n---\n%s", out, out2)
		}
	})
}
