package main

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/daemon"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/exporters/report"
)

// Bounds of the audit's own capture: its checks send a few hundred packets.
const (
	checkCaptureMaxPackets = 10000
	checkCaptureMaxBytes   = 16 << 20
	// checkCaptureDrain: several poll timeouts, for the packets still in the
	// ring when the checks end to be read.
	checkCaptureDrain = 300 * time.Millisecond
)

// checkCapture records, for --evidence.dir, the packets of the audit's own
// checks (the sockets they register in the ownflows registry, and ICMP errors
// quoting them) on one interface while they run. They are the probe's own
// handshakes, kept whole up to the snap length.
type checkCapture struct {
	iface   string
	src     capture.Source
	own     *ownflows.Registry
	pkts    []evidence.Packet
	bytes   int
	dropped int
	done    chan struct{}
}

// startCheckCapture opens iface (empty: the default route's); it needs
// CAP_NET_RAW.
func startCheckCapture(cfg *config.Config, iface string, own *ownflows.Registry) (*checkCapture, error) {
	if iface == "" {
		var err error
		if iface, err = capture.DefaultRouteInterface(); err != nil {
			return nil, err
		}
	}
	opts := daemon.LiveOptions(cfg, nil)
	opts.PollTimeout, opts.BlockTimeout = 100*time.Millisecond, 10*time.Millisecond
	src, err := capture.OpenLive(iface, opts)
	if err != nil {
		return nil, err
	}
	c := &checkCapture{iface: iface, src: src, own: own, done: make(chan struct{})}
	go c.loop(decode.NewDecoder(decode.Options{Decapsulate: cfg.Capture.Decapsulate, VXLANPorts: cfg.Capture.VXLANPorts,
		GenevePorts: cfg.Capture.GenevePorts, GTPUPorts: cfg.Capture.GTPUPorts}))
	return c, nil
}

func (c *checkCapture) loop(dec *decode.Decoder) {
	defer close(c.done)
	var p decode.Packet
	for {
		data, ts, wireLen, link, err := c.src.ReadPacket()
		if errors.Is(err, capture.ErrTimeout) {
			continue
		}
		if err != nil {
			return // closed
		}
		if dec.Decode(data, link, ts, wireLen, &p) != nil || !c.own.OwnPacket(&p) {
			continue
		}
		if len(c.pkts) >= checkCaptureMaxPackets || c.bytes+len(data) > checkCaptureMaxBytes {
			c.dropped++
			continue
		}
		c.bytes += len(data)
		c.pkts = append(c.pkts, evidence.Packet{Time: ts, WireLen: wireLen, Link: link, Data: bytes.Clone(data)})
	}
}

// finish stops the capture (the registry keeps released sockets for its
// linger, so their last packets were recognised), writes the file, and
// names it in the report: a note, and each check that did not pass.
func (c *checkCapture) finish(dir string, cfg *config.Config, rep *report.Report) error {
	time.Sleep(checkCaptureDrain) // the ring's last blocks: a check's final RST or FIN
	c.src.Close()
	<-c.done
	d, err := evidence.OpenDir(evidence.DirConfig{Path: dir, MaxBytes: cfg.Evidence.MaxDirBytes, Retention: cfg.Evidence.Retention})
	if err != nil {
		return err
	}
	name := d.NameFor(time.Time{}, "audit", "checks", c.iface)
	comment := fmt.Sprintf("zoomprobe audit: the packets of its own checks on %s (%d checks run)", c.iface, len(rep.Checks))
	if c.dropped > 0 {
		comment += fmt.Sprintf("; %d packets not kept (over %d packets or %d bytes)", c.dropped, checkCaptureMaxPackets, checkCaptureMaxBytes)
	}
	if err := d.WriteFile(name, c.pkts, comment); err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("The checks' packets (%d, captured on %s) are in %s.", len(c.pkts), c.iface, name))
	for i := range rep.Checks {
		ch := &rep.Checks[i]
		if ch.Status == report.Pass {
			continue
		}
		if ch.Evidence == nil {
			ch.Evidence = map[string]any{}
		}
		ch.Evidence[evidence.FileKey] = name
	}
	return nil
}
