package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/alecthomas/kingpin/v2"

	_ "github.com/zoomprobe/zoomprobe/analyzers/all" // link every analyzer into the binary
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/daemon"
	"github.com/zoomprobe/zoomprobe/internal/safetext"
	"github.com/zoomprobe/zoomprobe/offline"
)

func init() {
	commands = append(commands, command{
		Name: "analyze", Help: "Analyse pcap/pcapng files offline and report Zoom flows and findings.",
		Setup: func(cmd *kingpin.CmdClause, g *globals) func() int {
			files := cmd.Arg("file", "Capture files (pcap or pcapng), merged in packet-time order (see --per-file).").ExistingFiles()
			boxes := cmd.Flag("box", "NAME:INSIDE.pcap:OUTSIDE.pcap: captures of a box's two sides (toward the clients, toward Zoom), matched to name what the box drops (repeatable; settings from capture.boxes of that name).").Strings()
			format := cmd.Flag("format", "Output format: text (findings grouped) or json (one finding a line, then the flows).").Default("text").Enum("text", "json")
			flows := cmd.Flag("flows", "Text: also list every watched flow with its SNI, TLS version, issuer, verdict, packets and bytes.").Bool()
			perFile := cmd.Flag("per-file", "Analyse each file on its own (own timeline, results and summary) instead of merging them.").Bool()
			metricsFile := cmd.Flag("metrics.file", "Also write the final metrics in text exposition format to this file.").String()
			workers := cmd.Flag("workers", "Analysis workers (default: capture.workers from the config, 1 for the built-in config).").Int()
			evidenceDir := cmd.Flag("evidence.dir", "Write one pcapng per finding, with the packets behind it, into this directory (bounded by the config's evidence: section).").String()
			return func() int {
				return runAnalyze(g, analyzeArgs{files: *files, boxes: *boxes, format: *format, flows: *flows, perFile: *perFile, metricsFile: *metricsFile, workers: *workers, evidenceDir: *evidenceDir})
			}
		},
	})
	commands = append(commands, command{
		Name: "check-config", Help: "Validate the configuration file, and check the files, BPF filter, analyzer names and event log directory it names; exit 0 if valid, 1 if not.",
		Setup: func(cmd *kingpin.CmdClause, g *globals) func() int {
			print := cmd.Flag("print", "Print the effective configuration, defaults included.").Bool()
			return func() int {
				cfg, err := loadCommandConfig(g)
				if err != nil {
					fmt.Fprintf(os.Stderr, "%v\n", err)
					return 1
				}
				name := g.configFile
				if name == "" {
					name = "built-in default configuration"
				}
				// What only the machine can tell (files, BPF, analyzer names,
				// the event log directory), as the daemon checks before it starts.
				if err := daemon.Preflight(cfg); err != nil {
					fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
					return 1
				}
				fmt.Fprintf(os.Stderr, "%s: OK\n", name)
				if *print {
					b, err := cfg.Marshal()
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						return 1
					}
					os.Stdout.Write(b)
				}
				return 0
			}
		},
	})
}

type analyzeArgs struct {
	files       []string
	boxes       []string
	format      string
	flows       bool
	perFile     bool
	metricsFile string
	workers     int
	evidenceDir string
}

func runAnalyze(g *globals, a analyzeArgs) int {
	cfg, err := loadCommandConfig(g)
	if err != nil {
		fmt.Fprintf(os.Stderr, "zoomprobe analyze: %v\n", err)
		return 2
	}
	var boxes []offline.Box
	for _, s := range a.boxes {
		b, err := offline.ParseBox(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "zoomprobe analyze: %v\n", err)
			return 2
		}
		for _, f := range []string{b.Inside, b.Outside} {
			if _, err := os.Stat(f); err != nil {
				fmt.Fprintf(os.Stderr, "zoomprobe analyze: --box %s: %v\n", b.Name, err)
				return 2
			}
		}
		boxes = append(boxes, b)
	}
	if len(a.files) == 0 && len(boxes) == 0 {
		fmt.Fprintln(os.Stderr, "zoomprobe analyze: name capture files, or a box's two captures with --box NAME:INSIDE.pcap:OUTSIDE.pcap")
		return 2
	}
	if a.perFile && len(boxes) > 0 {
		fmt.Fprintln(os.Stderr, "zoomprobe analyze: --per-file analyses each file alone, and a box needs its two sides together: drop --per-file or --box")
		return 2
	}
	if a.perFile && a.metricsFile != "" {
		fmt.Fprintln(os.Stderr, "zoomprobe analyze: --metrics.file takes the metrics of one analysis: drop --per-file or --metrics.file")
		return 2
	}
	if g.configFile == "" {
		cfg.Capture.Workers = 1
	}
	if a.workers > 0 {
		cfg.Capture.Workers = a.workers
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	runs := [][]string{a.files}
	if a.perFile {
		runs = runs[:0]
		for _, f := range a.files {
			runs = append(runs, []string{f})
		}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	code := 0
	for i, files := range runs {
		res, err := offline.Analyze(ctx, cfg, files, offline.Options{Logger: g.logger, EvidenceDir: a.evidenceDir, Boxes: boxes})
		if err != nil {
			// With --per-file, one unreadable file does not hide the others.
			fmt.Fprintf(os.Stderr, "zoomprobe analyze: %v\n", err)
			code = 1
			continue
		}
		// A file cut short (tcpdump killed mid-write) still gives the
		// results of the packets before the cut: warn, exit 0.
		for _, w := range res.Warnings {
			fmt.Fprintf(os.Stderr, "zoomprobe analyze: warning: %s\n", safetext.Escape(w))
		}
		if a.format == "json" {
			err = res.WriteJSON(out)
		} else {
			if a.perFile {
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprintf(out, "=== %s ===\n", safetext.Escape(files[0]))
			}
			err = res.WriteText(out)
			if err == nil && a.flows {
				fmt.Fprintln(out)
				err = res.WriteFlows(out)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "zoomprobe analyze: %v\n", err)
			return 1
		}
		if a.metricsFile != "" {
			if err := writeFile(a.metricsFile, res.WriteMetrics); err != nil {
				fmt.Fprintf(os.Stderr, "zoomprobe analyze: --metrics.file: %v\n", err)
				return 1
			}
		}
	}
	return code
}

// loadCommandConfig reads --config.file, or the built-in default.
func loadCommandConfig(g *globals) (*config.Config, error) {
	return config.Load(g.configFile, g.site)
}

func writeFile(path string, write func(w io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
