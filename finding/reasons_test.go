package finding

import (
	"os"
	"regexp"
	"testing"
)

// docs/reasons.md documents every reason, and only those.
func TestReasonsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/reasons.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| (.+?) \|`).FindAllStringSubmatch(string(b), -1) {
		for _, r := range regexp.MustCompile("`([a-z0-9_]+)`").FindAllStringSubmatch(m[1], -1) {
			documented[r[1]] = true
		}
	}
	known := map[string]bool{}
	for _, r := range AllReasons {
		if known[string(r)] {
			t.Errorf("%s listed twice in AllReasons", r)
		}
		known[string(r)] = true
		if !documented[string(r)] {
			t.Errorf("reason %s is not documented in docs/reasons.md", r)
		}
	}
	for r := range documented {
		if !known[r] {
			t.Errorf("docs/reasons.md documents %s, which the code does not have", r)
		}
	}
}
