// Command zoomprobe-gen writes zoomprobe's test captures: named scenarios
// (optionally wrapped as mirror ports deliver them) or a large mix for
// benchmarks.
//
//	zoomprobe-gen -list
//	zoomprobe-gen -scenario zoom-clean -format pcap -wrap erspan2 -o zoom-clean-erspan2.pcap
//	zoomprobe-gen -large 1000000 -format pcap -o large.pcap
//	zoomprobe-gen -tls-cuts -o cuts.pcap   (every cut of the real handshakes, testgen.TLSCutsScenario)
//	zoomprobe-gen -tls-cache testgen/tlscache   (what go generate ./testgen runs)
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// cutsScenario stands for -tls-cuts (not a registered scenario name).
const cutsScenario = "\x00tls-cuts"

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zoomprobe-gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "", "scenario to write (see -list)")
	tlsCuts := fs.Bool("tls-cuts", false, "write every cut of the real test handshakes (one message per record, split over records of 1..1000 bytes, small and shuffled segments...), one connection each, instead of a scenario")
	format := fs.String("format", "pcap", "file format: pcap or pcapng")
	wrap := fs.String("wrap", "none", "encapsulation: none, vlan, qinq, erspan2, erspan3, vxlan, gre")
	out := fs.String("o", "", "output file (required; - for standard output)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	large := fs.Int("large", 0, "write a large mixed capture of about this many packets instead of a scenario")
	ipv6 := fs.Bool("ipv6", false, "use the scenario's IPv6 address plan")
	seed := fs.Uint64("seed", testgen.DefaultSeed, "PRNG seed")
	tlsCache := fs.String("tls-cache", "", "record the TLS transcripts the scenarios use into this directory and exit (go generate ./testgen)")
	testdata := fs.String("testdata", "", "write the committed captures (testgen.CommittedCaptures) into this directory and exit")
	start := fs.String("start", testgen.DefaultStart.Format(time.RFC3339), "capture start time (RFC 3339)")
	box := fs.String("box", "", "write a box's two captures (inside, outside through a NAT) of this two-sided scenario (see -list) as -o's name with -inside and -outside before the extension, for analyze --box")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *list {
		for _, s := range testgen.List() {
			fmt.Fprintf(stdout, "%-26s %s\n", s.Name, s.Description)
		}
		for _, name := range testgen.BoxScenarios() {
			if b, err := testgen.BuildBox(name, testgen.Params{}); err == nil {
				fmt.Fprintf(stdout, "%-26s (-box) %s\n", name, b.Description)
			}
		}
		return 0
	}
	if *tlsCache != "" {
		n, err := testgen.WriteTLSCache(*tlsCache)
		if err != nil {
			fmt.Fprintln(stderr, "zoomprobe-gen:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %d TLS transcripts to %s\n", n, *tlsCache)
		return 0
	}
	if *testdata != "" {
		if err := testgen.WriteCommittedCaptures(*testdata); err != nil {
			fmt.Fprintln(stderr, "zoomprobe-gen:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %d captures to %s\n", len(testgen.CommittedCaptures()), *testdata)
		return 0
	}
	if *box != "" {
		if err := writeBox(*box, *format, *out, *seed, *start, stdout); err != nil {
			fmt.Fprintln(stderr, "zoomprobe-gen:", err)
			return 1
		}
		return 0
	}
	if *tlsCuts {
		*scenario = cutsScenario
	}
	if err := generate(*scenario, *format, *wrap, *out, *large, *ipv6, *seed, *start, stderr); err != nil {
		fmt.Fprintln(stderr, "zoomprobe-gen:", err)
		return 1
	}
	return 0
}

func generate(scenario, format, wrapName, out string, large int, ipv6 bool, seed uint64, startText string, stderr io.Writer) (err error) {
	if out == "" {
		return errors.New("-o FILE is required")
	}
	if (scenario == "") == (large <= 0) {
		return errors.New("give exactly one of -scenario NAME and -large N")
	}
	start, err := time.Parse(time.RFC3339, startText)
	if err != nil {
		return fmt.Errorf("-start %q: %w", startText, err)
	}
	w, err := testgen.ParseWrap(wrapName)
	if err != nil {
		return fmt.Errorf("-wrap: %w", err)
	}
	if format != string(testgen.FormatPCAP) && format != string(testgen.FormatPCAPNG) {
		return fmt.Errorf("-format %q: want pcap or pcapng", format)
	}
	var dst io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		dst = f
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	pw, err := testgen.NewPacketWriter(bw, testgen.Format(format))
	if err != nil {
		return err
	}
	wrapper := testgen.NewWrapper(w)
	write := func(p testgen.Packet) error {
		wp, err := wrapper.Wrap(p)
		if err != nil {
			return err
		}
		return pw.WritePacket(wp)
	}
	if large > 0 {
		began := time.Now()
		n, err := testgen.Large(large, testgen.LargeOptions{Seed: seed, Start: start}, write)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "zoomprobe-gen: wrote %d packets in %s\n", n, time.Since(began).Round(time.Millisecond))
	} else {
		build := testgen.Build
		if scenario == cutsScenario {
			build = func(_ string, p testgen.Params) (*testgen.Scenario, error) { return testgen.TLSCutsScenario(p) }
		}
		s, err := build(scenario, testgen.Params{Seed: seed, Start: start, IPv6: ipv6})
		if err != nil {
			return err
		}
		for _, p := range s.Packets {
			if err := write(p); err != nil {
				return err
			}
		}
	}
	if err := pw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// writeBox writes a two-sided scenario's captures: OUT-inside.EXT and
// OUT-outside.EXT.
func writeBox(name, format, out string, seed uint64, startText string, stdout io.Writer) error {
	if out == "" || out == "-" {
		return errors.New("-box needs -o FILE (two files are written beside it)")
	}
	start, err := time.Parse(time.RFC3339, startText)
	if err != nil {
		return fmt.Errorf("-start %q: %w", startText, err)
	}
	s, err := testgen.BuildBox(name, testgen.Params{Seed: seed, Start: start})
	if err != nil {
		return err
	}
	ext := filepath.Ext(out)
	base := strings.TrimSuffix(out, ext)
	for _, side := range []struct {
		name string
		pkts []testgen.Packet
	}{{"inside", s.Inside}, {"outside", s.Outside}} {
		path := base + "-" + side.name + ext
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		err = testgen.WritePackets(f, testgen.Format(format), side.pkts)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d packets\n", path, len(side.pkts))
	}
	return nil
}
