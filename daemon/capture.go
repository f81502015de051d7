package daemon

import (
	"fmt"
	"time"

	"golang.org/x/net/bpf"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
)

// LiveOptions turns the capture config into AF_PACKET options.
func LiveOptions(cfg *config.Config, filter []bpf.RawInstruction) capture.LiveOptions {
	return capture.LiveOptions{
		SnapLen:     cfg.Capture.SnapLen,
		RingSizeMB:  cfg.Capture.RingSizeMB,
		Promiscuous: cfg.Capture.Promiscuous,
		PollTimeout: 250 * time.Millisecond,
		Filter:      filter,
	}
}

// bpfField names the field the filter comes from, for errors.
func bpfField(cfg *config.Config) string {
	if cfg.Capture.BPFFile != "" {
		return "capture.bpf_file " + cfg.Capture.BPFFile
	}
	return "capture.bpf"
}

func loadBPF(cfg *config.Config) ([]bpf.RawInstruction, error) {
	text := cfg.Capture.BPF
	field := "capture.bpf"
	if cfg.Capture.BPFFile != "" {
		b, err := config.ReadFile(cfg.Capture.BPFFile)
		if err != nil {
			return nil, fmt.Errorf("capture.bpf_file: %w", err)
		}
		text, field = string(b), "capture.bpf_file "+cfg.Capture.BPFFile
	}
	if text == "" {
		return nil, nil
	}
	prog, err := capture.ParseBPF(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (write the output of `tcpdump -ddd 'FILTER'`)", field, err)
	}
	return prog, nil
}
