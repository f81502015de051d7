package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A test run never stops or kills what it did not start. Processes named
// like Debian's packaged services (which apt starts on install) and
// listeners on their ports survive scripts/deps.sh, which test.sh runs first,
// and a harness's start and cleanup, which use their own free ports and stop
// their own processes by PID.
func TestLeavesHostServicesAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and Alertmanager")
	}
	if os.Geteuid() != 0 {
		t.Skip("scripts/deps.sh acts on the host's services only as root")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var decoys []*exec.Cmd
	for _, name := range []string{"prometheus", "prometheus-alertmanager", "prometheus-node-exporter"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(path, "3600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		decoys = append(decoys, cmd)
	}
	// The packaged services' ports, held here when free (when a real
	// service holds one, the harness must get around it all the same).
	for _, port := range []string{"9090", "9093", "9094", "9100"} {
		if l, err := net.Listen("tcp", ":"+port); err == nil {
			defer l.Close()
		}
	}

	out, err := exec.Command("../../scripts/deps.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/deps.sh: %v\n%s", err, out)
	}
	t.Run("harness", func(t *testing.T) {
		h := Start(t, Options{Targets: []string{freeAddr(t)}})
		h.WaitForQuery(t, `up{job="zoomprobe"} == 0`, 30*time.Second)
	})

	// A signal that was sent fixes the exit status when it is sent, so a
	// decoy ended by someone else reports that signal, not our SIGKILL.
	for _, cmd := range decoys {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("%s was ended by someone else: %v", filepath.Base(cmd.Path), cmd.ProcessState)
		}
	}
}
