package testbed

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// DaemonConfigYAML is what a daemon watching the bed needs, as config
// sections (zoom, tls, reachability) to which a caller may add others: the
// bed's "Internet" is watched, the test Zoom root (written as PEM into dir)
// is the only trusted and expected root, so the clean path is clean, and the
// reachability timers are short enough for scenarios of a few seconds.
func DaemonConfigYAML(dir string, root *CA) (string, error) {
	pemPath := filepath.Join(dir, "zoom-test-root.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), 0o644); err != nil {
		return "", err
	}
	return fmt.Sprintf(`zoom:
  watch:
    networks: [%q, %q]
tls:
  system_roots: false
  extra_roots: [%q]
  expected_issuers:
    - cn: %q
reachability:
  syn_timeout: 1s
  udp_answer_window: 200ms
`, ServerNet, ServerNet6, pemPath, ZoomRootCN), nil
}
