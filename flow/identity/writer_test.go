package identity_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// An analyzer cannot write identity: each way of trying, compiled as a
// package under analyzers/, is refused by the compiler; reading compiles.
// The packages exist only in a build overlay, so the tree is not touched.
func TestAnalyzerCannotWriteIdentity(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to compile the attempts: ", err)
	}
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	const header = `package writer

import (
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

var _ = zoom.ServiceWeb

func Packet(f *flow.Flow) {
`
	for _, tc := range []struct {
		name, body, imports, wantErr string
	}{
		{"reading compiles", `_ = f.Service().IsZoom() || f.Name() != "" || f.Identity().Final || f.IdentityFinal() || f.Watched()`, "", ""},
		{"assigning the service", `f.Service = zoom.ServiceWeb`, "", "cannot assign to f.Service"},
		{"assigning the name", `f.Name = "zoom.us"`, "", "cannot assign to f.Name"},
		{"the unexported record", `f.identity.Service = zoom.ServiceWeb`, "", "f.identity undefined"},
		{"making a key", `f.IdentityCell(writekey.New()).Service = zoom.ServiceWeb`, `import "github.com/zoomprobe/zoomprobe/flow/internal/writekey"`, "use of internal package"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := header + "\t" + tc.body + "\n}\n"
			if tc.imports != "" {
				src = strings.Replace(src, "import (", tc.imports+"\n\nimport (", 1)
			}
			file := filepath.Join(dir, "writer.go")
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(root, "analyzers", "zzidentitywriter", "writer.go"): file}})
			ov := filepath.Join(dir, "overlay.json")
			if err := os.WriteFile(ov, overlay, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(gobin, "build", "-overlay", ov, "./analyzers/zzidentitywriter")
			cmd.Dir = root
			msg, err := cmd.CombinedOutput()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("reading identity does not compile:\n%s", msg)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("an analyzer could write identity:\n%s", src)
			case tc.wantErr != "" && !strings.Contains(string(msg), tc.wantErr):
				t.Fatalf("refused for another reason (want %q):\n%s", tc.wantErr, msg)
			}
		})
	}
}

// What the compiler cannot stop is stopped at run time: a zero key conjured
// through a generic function gets nothing, and changing the copy that
// Identity returns changes nothing.
func TestConjuredKeyWritesNothing(t *testing.T) {
	r := newRig(config.WatchConfig{}, 0)
	c := newConn(cloud + ":443")
	f := r.feed(open(c)...)
	if cell := conjure(f.IdentityCell); cell != nil {
		t.Fatal("a zero key opened the identity record")
	}
	id := f.Identity()
	id.Service, id.Final = zoom.ServiceWeb, true
	if f.Service() != zoom.ServiceNone || f.IdentityFinal() {
		t.Fatalf("a copy changed the flow: %+v", f.Identity())
	}
}

func conjure[K any](open func(K) *flow.IdentityCell) *flow.IdentityCell {
	var zero K
	return open(zero)
}
