package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDefaultYAMLIsValid(t *testing.T) {
	c, err := Parse(DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	if c.EventLog.Path != "-" || len(c.Capture.Interfaces) != 0 {
		t.Errorf("default: event log %q, interfaces %v", c.EventLog.Path, c.Capture.Interfaces)
	}
	if c.Flows.MaxFlows != 65536 || c.Flows.EmbryonicTimeout != 30*time.Second {
		t.Errorf("defaults not applied: %+v", c.Flows)
	}
}

func TestEmptyFileGivesDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Capture.SnapLen != 65535 || c.EventLog.MaxSizeMB != 100 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestValuesOverrideDefaults(t *testing.T) {
	c, err := Parse([]byte("capture:\n  workers: 3\nflows:\n  tcp_timeout: 90s\nzoom:\n  watch:\n    networks: [192.0.2.0/24, '2001:db8::1/32']\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Capture.Workers != 3 || c.Flows.TCPTimeout != 90*time.Second {
		t.Errorf("got workers %d tcp_timeout %s", c.Capture.Workers, c.Flows.TCPTimeout)
	}
	if c.Flows.UDPTimeout != 2*time.Minute {
		t.Errorf("unset field lost its default: %s", c.Flows.UDPTimeout)
	}
	if len(c.Zoom.Watch.Prefixes) != 2 || c.Zoom.Watch.Prefixes[1].String() != "2001:db8::/32" {
		t.Errorf("prefixes = %v", c.Zoom.Watch.Prefixes)
	}
}

// Each file in testdata/bad breaks one rule; the error must name the field and line.
func TestBadConfigs(t *testing.T) {
	want := map[string]string{
		"unknown-field.yml":          "line 3: field wrokers not found in type config.CaptureConfig",
		"workers-range.yml":          "line 3: capture.workers: must be between 1 and 64, got 0",
		"client-hello-bytes.yml":     "line 2: zoom.max_client_hello_bytes: must be between 1024 and 65536, got 100",
		"bad-network.yml":            `line 5: zoom.watch.networks[1]: "10.0.0.300/24" is not a CIDR network`,
		"bad-duration.yml":           "line 2: cannot unmarshal !!str `forever` into time.Duration",
		"timeout-range.yml":          "line 2: flows.embryonic_timeout: must be between 1s and 24h, got 10ms",
		"not-yaml.yml":               "line 1: did not find expected ',' or ']'",
		"duplicate-interface.yml":    `line 5: capture.interfaces[2]: "eth0" is listed twice (also capture.interfaces[0]); list each interface once`,
		"dns-answer-window.yml":      "line 2: zoom.dns_answer_window: must be between 100ms and 1m, got 2h0m0s",
		"bad-site.yml":               `line 2: site: "branch 7/ams": use letters, digits, '.', '_' and '-', starting with a letter or digit`,
		"client-drop-retries.yml":    "line 2: reachability.client_drop_min_retries: must be between 1 and 16, got 0",
		"any-with-named.yml":         `line 2: capture.interfaces[1]: "any" captures every interface and cannot be combined with named interfaces; list either "any" alone or the interfaces`,
		"findings-resolve-after.yml": "line 3: findings.resolve_after: 30m0s is shorter than tls.dedup_window (1h0m0s): a problem still there would leave the findings page between two of its findings; set it to 1h0m0s or more",
		"findings-max-bytes.yml":     "line 2: findings.max_bytes: must be between 65536 and 1073741824, got 1000",
		"evidence-flow-bytes.yml":    "line 3: evidence.max_bytes_per_flow: must be between 4096 and 1048576, got 100",
		"evidence-retention.yml":     "line 3: evidence.retention: must be at least 1m, got 1s",
		"box-unknown-source.yml":     `line 6: capture.boxes[0].outside: "eth2" is not a capture source: name an interface listed in capture.interfaces (not "any")`,
		"box-same-source.yml":        `line 6: capture.boxes[0].outside: "eth0" is also the inside: a box's two sides are two different interfaces`,
		"box-duplicate-name.yml":     `line 7: capture.boxes[1].name: "fw1" is also the name of capture.boxes[0]; give each box its own name`,
		"box-bad-name.yml":           `line 4: capture.boxes[0].name: "fw 1{x}": use 1 to 32 letters, digits, '_' and '-', starting with a letter (it becomes a metric label)`,
		"box-live-readers.yml":       "line 3: capture.live_readers: must be 1 with capture.boxes (each side of a box is read by one socket, so its clock is in packet order), got 2",
		"box-no-interfaces.yml":      `line 4: capture.boxes[0].inside: "eth1" is not a capture source: name an interface listed in capture.interfaces (not "any")`,
		"box-table-bytes.yml":        "line 7: capture.boxes[0].table_bytes: must be between 65536 and 1073741824, got 100",
	}
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) != len(want) {
		t.Fatalf("%d bad configs in testdata, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := LoadFile(f)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), f+": ") {
				t.Errorf("error does not name the file: %v", err)
			}
			if !strings.Contains(err.Error(), want[filepath.Base(f)]) {
				t.Errorf("error %q\nwant it to contain %q", err, want[filepath.Base(f)])
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yml"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := Default()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("printed config does not load back: %v\n%s", err, b)
	}
	if c2.Flows != c.Flows || c2.Capture.Workers != c.Capture.Workers {
		t.Errorf("round trip changed the config")
	}
}

// Distinct interfaces, or "any" alone, are accepted.
func TestInterfacesAccepted(t *testing.T) {
	for _, y := range []string{"capture:\n  interfaces: [any]\n", "capture:\n  interfaces: [eth0, eth1, mon0]\n"} {
		if _, err := Parse([]byte(y)); err != nil {
			t.Errorf("%q rejected: %v", y, err)
		}
	}
}

// The built-in defaults are what an empty file gives, parsed fields included
// (Default() had the Go Daddy issuers without their end date).
func TestDefaultEqualsEmptyFile(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Default() differs from Parse(\"\"):\n%+v\n%+v", Default(), c)
	}
}

// A proxy URL that does not validate is named in the error without its
// credentials.
func TestProxyErrorHidesPassword(t *testing.T) {
	for _, u := range []string{"http://user:s3cret@proxy.example", "http://user:s3cret@proxy example:3128", "user:s3cret@proxy:3128"} {
		_, err := Parse([]byte("probes:\n  proxy:\n    url: \"" + u + "\"\n"))
		if err == nil || !strings.Contains(err.Error(), "probes.proxy.url") {
			t.Fatalf("%s: err %v", u, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// A file the configuration names must be a regular file: /dev/zero as a root
// file used to hang check-config.
func TestNamedFileMustBeRegular(t *testing.T) {
	_, err := Parse([]byte("tls:\n  extra_roots: [/dev/zero]\n"))
	if err == nil || !strings.Contains(err.Error(), "tls.extra_roots") || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err %v", err)
	}
}

// A FIFO named as a configured file is refused at once: opening it for
// reading used to wait for a writer that never comes.
func TestNamedFileFIFORefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "roots.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(fifo)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err %v", err)
	}
}

// A box with only its name and sides gets the documented defaults.
func TestBoxDefaults(t *testing.T) {
	c, err := Parse([]byte("capture:\n  interfaces: [eth1, eth2]\n  boxes:\n    - {name: fw1, inside: eth1, outside: eth2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Capture.Boxes[0]
	if b.Window != 2*time.Second || b.TableBytes != 4<<20 || b.MinDrops != 2 || b.MatchIPID {
		t.Errorf("defaults: %+v", b)
	}
}
