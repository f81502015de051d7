package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

func TestList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-list"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, s := range testgen.List() {
		if !strings.Contains(out.String(), s.Name+" ") {
			t.Fatalf("-list lacks %s", s.Name)
		}
	}
}

func TestWritesScenario(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want testgen.CommittedCapture
	}{
		{[]string{"-scenario", "syn-refused"}, testgen.CommittedCapture{Scenario: "syn-refused", Format: testgen.FormatPCAP, Wrap: testgen.WrapNone}},
		{[]string{"-scenario", "zoom-clean", "-format", "pcapng"}, testgen.CommittedCapture{Scenario: "zoom-clean", Format: testgen.FormatPCAPNG, Wrap: testgen.WrapNone}},
		{[]string{"-scenario", "dns-sinkhole", "-wrap", "vxlan", "-ipv6"}, testgen.CommittedCapture{Scenario: "dns-sinkhole", Format: testgen.FormatPCAP, Wrap: testgen.WrapVXLAN, IPv6: true}},
		{[]string{"-scenario", "tls-fortigate", "-wrap", "erspan3"}, testgen.CommittedCapture{Scenario: "tls-fortigate", Format: testgen.FormatPCAP, Wrap: testgen.WrapERSPAN3}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			file := filepath.Join(dir, "out")
			var out, errb bytes.Buffer
			if code := run(append(tc.args, "-o", file), &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := tc.want.Write(&want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("CLI output differs from testgen's (%d vs %d bytes)", len(got), want.Len())
			}
		})
	}
}

func TestLargeFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "large.pcap")
	var out, errb bytes.Buffer
	if code := run([]string{"-large", "5000", "-wrap", "vlan", "-o", file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "wrote 5000 packets") {
		t.Fatalf("stderr: %s", errb.String())
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Size() < 5000*60 {
		t.Fatalf("large file: %v %v", fi, err)
	}
}

func TestBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-scenario", "nope", "-o", filepath.Join(dir, "x")}, 1, `unknown scenario "nope"`},
		{[]string{"-scenario", "zoom-clean", "-wrap", "wireguard", "-o", filepath.Join(dir, "x")}, 1, "-wrap"},
		{[]string{"-scenario", "zoom-clean", "-format", "erf", "-o", filepath.Join(dir, "x")}, 1, "-format"},
		{[]string{"-scenario", "zoom-clean"}, 1, "-o FILE is required"},
		{[]string{"-scenario", "zoom-clean", "-large", "10", "-o", filepath.Join(dir, "x")}, 1, "exactly one of"},
		{[]string{"-start", "yesterday", "-scenario", "zoom-clean", "-o", filepath.Join(dir, "x")}, 1, "-start"},
		{[]string{"-bogus"}, 2, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errb.String(), tc.msg)
			}
		})
	}
}

// -tls-cuts writes testgen.TLSCutsScenario byte for byte.
func TestTLSCutsFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cuts.pcap")
	var out, errb bytes.Buffer
	if code := run([]string{"-tls-cuts", "-o", file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	sc, err := testgen.TLSCutsScenario(testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := testgen.WritePackets(&want, testgen.FormatPCAP, sc.Packets); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("-tls-cuts wrote %d bytes, want the scenario's %d (%v)", len(got), want.Len(), err)
	}
}
