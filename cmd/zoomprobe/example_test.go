package main

import (
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/config"
)

// The shipped example validates as shipped, on any host: check-config runs
// the same machine checks the daemon runs before it starts (files, BPF,
// event log directory), so a path that only exists after a package install
// would fail here on a fresh host.
func TestShippedExampleValidates(t *testing.T) {
	const path = "../../configs/zoomprobe.yml"
	code, _, stderr := runCaptured(t, "--config.file", path, "check-config")
	if code != 0 || !strings.Contains(stderr, path+": OK") {
		t.Fatalf("check-config on the shipped example: exit %d, stderr %q", code, stderr)
	}
	// One default for the event log, the same in the example, the built-in
	// config and an empty file.
	ex, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := config.Parse(config.DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	empty := config.Default()
	if ex.EventLog.Path != empty.EventLog.Path || builtin.EventLog.Path != empty.EventLog.Path {
		t.Errorf("event_log.path: example %q, built-in %q, empty file %q: want one default",
			ex.EventLog.Path, builtin.EventLog.Path, empty.EventLog.Path)
	}
}
