package testbed

import (
	"sync"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/finding"
)

// TestBoxLive runs the daemon's engine live on the box's two mirrors (mon0
// inside, mon1 outside, two AF_PACKET readers) while the client meets the
// NAT that drops UDP 8801 and resets TCP 8802: the box's two verdicts come
// while capture goes on (no end-of-file flush), from the idle sides' clocks.
func TestBoxLive(t *testing.T) {
	bed, err := New(t, Options{OutsideMirror: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, bh := range []Behaviour{NAT(), Drop("udp", "8801"), Reject("tcp", "8802", RejectTCPReset)} {
		if err := bed.Apply(bh); err != nil {
			t.Fatalf("apply %s: %v", bh, err)
		}
	}
	cfg := daemonConfig(t)
	cfg.Capture.Workers = 2
	cfg.Capture.Interfaces = []string{ProbeIf, ProbeOutsideIf}
	box := config.BoxConfig{Name: "fw1", Inside: ProbeIf, Outside: ProbeOutsideIf}
	box.SetDefaults()
	cfg.Capture.Boxes = []config.BoxConfig{box}

	var mu sync.Mutex
	var got []finding.Finding
	boxFindings := make(chan finding.Finding, 16)
	sink := finding.SinkFunc(func(f finding.Finding) {
		mu.Lock()
		got = append(got, f)
		mu.Unlock()
		if f.Evidence["where"] == "between_capture_points" {
			boxFindings <- f
		}
	})
	eng, err := engine.New(engine.Options{Config: cfg, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	eng.Start()
	for _, ifname := range cfg.Capture.Interfaces {
		in := engine.Input{Label: ifname, Live: true, Open: func() (src capture.Source, err error) {
			err = bed.Do(NSProbe, func() error {
				src, err = capture.OpenLive(ifname, capture.LiveOptions{RingSizeMB: 4, Promiscuous: true,
					PollTimeout: 100 * time.Millisecond, BlockTimeout: 10 * time.Millisecond})
				return err
			})
			return src, err
		}}
		if err := eng.AddInput(in, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	// Both sockets capture before the client starts.
	deadline := time.Now().Add(10 * time.Second)
	for len(eng.NotReady()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("capture not ready: %v", eng.NotReady())
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := bed.RunClient(ClientPlan{MediaTCPPort: 8802, SkipSTUN: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Media != StepMediaTLS {
		t.Fatalf("client: %s", res)
	}
	verdicts := map[string]bool{}
	timeout := time.After(30 * time.Second) // a bound for a failure, not a wait for success
	for len(verdicts) < 2 {
		select {
		case f := <-boxFindings:
			verdicts[string(f.Reason)+" "+f.Flow.Transport] = true
			if f.Evidence["box"] != "fw1" {
				t.Errorf("finding does not name fw1: %v", f.Evidence)
			}
		case <-timeout:
			t.Fatalf("box verdicts after 30 s: %v", verdicts)
		}
	}
	eng.Stop(time.Time{})
	if !verdicts["udp_no_answer udp"] || !verdicts["connection_refused tcp"] {
		t.Errorf("verdicts %v", verdicts)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range got {
		if f.Evidence["where"] == "beyond_probe" {
			t.Errorf("a beyond_probe finding besides the box's: %s/%s %+v", f.Kind, f.Reason, f.Flow)
		}
	}
}
