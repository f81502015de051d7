package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
)

// startupLines says, before anything runs, what the daemon will listen to,
// what it will contact and where its findings go: an operator must know that
// the default configuration sends packets to Zoom, NTP and DNS servers.
// Each entry is a message and its attributes, logged at info level.
func startupLines(cfg *config.Config, passive bool, listen []string, endpoints string) []logLine {
	var out []logLine
	ifaces := strings.Join(cfg.Capture.Interfaces, ",")
	if ifaces == "" {
		if def, err := capture.DefaultRouteInterface(); err == nil {
			ifaces = def + " (default route)"
		} else {
			ifaces = "default-route interface (not found: " + err.Error() + ")"
		}
	}
	var names []string
	for _, p := range analyzers.Registered() {
		if cfg.Analyzers.Enabled(p.Name()) {
			names = append(names, p.Name())
		}
	}
	site := cfg.Site
	if site == "" {
		site = "none"
	}
	out = append(out, logLine{"capture", []any{"site", site, "interfaces", ifaces, "workers", cfg.Capture.Workers,
		"promiscuous", cfg.Capture.Promiscuous, "analyzers", strings.Join(names, ",")}})
	for _, b := range cfg.Capture.Boxes {
		out = append(out, logLine{"box between two capture points: Zoom packets seen on one side and not the other are its drops",
			[]any{"box", b.Name, "inside", b.Inside, "outside", b.Outside, "window", b.Window, "table_bytes", b.TableBytes}})
	}

	switch {
	case passive:
		out = append(out, logLine{"active checks off (--passive): zoomprobe only listens and sends no packet", nil})
	case !cfg.Probes.Enabled:
		out = append(out, logLine{"active checks off (probes.enabled: false): zoomprobe only listens and sends no packet", nil})
	default:
		out = append(out, logLine{"active checks on: zoomprobe contacts the servers below (--passive or probes.enabled: false turns them off)", nil})
		out = append(out, checkLines(cfg.Probes)...)
	}

	dest := cfg.EventLog.Path
	switch dest {
	case "":
		dest = "nowhere (event_log.path is empty); counted in zoomprobe_findings_total"
	case "-":
		dest = "standard output (JSON lines); counted in zoomprobe_findings_total"
	default:
		dest += " (JSON lines); counted in zoomprobe_findings_total"
	}
	out = append(out, logLine{"findings", []any{"to", dest}})
	out = append(out, logLine{"listening", []any{"address", strings.Join(listen, ","), "endpoints", endpoints}})
	return out
}

type logLine struct {
	msg   string
	attrs []any
}

func checkLines(p config.ProbesConfig) []logLine {
	var out []logLine
	via := ""
	if p.Proxy.Parsed != nil {
		via = "through proxy " + p.Proxy.Parsed.Host // never the credentials
	}
	if p.TLS.Enabled {
		out = append(out, logLine{"active check", []any{"check", "tls", "every", p.TLS.Interval.String(),
			"contacts", joinTargets(p.TLS.Targets, []uint16{443}), "via", orDirect(via)}})
	}
	if p.TCP.Enabled {
		out = append(out, logLine{"active check", []any{"check", "tcp", "every", p.TCP.Interval.String(),
			"contacts", joinTargets(p.TCP.Targets, p.TCP.Ports)}})
	}
	if p.STUN.Enabled {
		out = append(out, logLine{"active check", []any{"check", "stun", "every", p.STUN.Interval.String(),
			"contacts", joinTargets(p.STUN.Targets, p.STUN.Ports) + " (UDP)"}})
	}
	if p.NTP.Enabled {
		servers := strings.Join(p.NTP.Servers, ",")
		if p.NTP.SystemServers {
			servers = strings.TrimPrefix(servers+",the system's NTP servers", ",")
		}
		out = append(out, logLine{"active check", []any{"check", "ntp", "every", p.NTP.Interval.String(), "contacts", servers + " (UDP 123)"}})
	}
	if p.DNS.Enabled {
		var resolvers []string
		if p.DNS.System {
			resolvers = append(resolvers, "the system resolver")
		}
		resolvers = append(resolvers, p.DNS.Resolvers...)
		out = append(out, logLine{"active check", []any{"check", "dns", "every", p.DNS.Interval.String(),
			"asks", strings.Join(resolvers, ","), "names", strings.Join(p.DNS.Names, ",")}})
	}
	return out
}

// joinTargets writes each target with the ports it is tried on.
func joinTargets(targets []config.ProbeTarget, ports []uint16) string {
	var ps []string
	for _, p := range ports {
		ps = append(ps, strconv.Itoa(int(p)))
	}
	var out []string
	for _, t := range targets {
		s := t.String()
		if t.Port == 0 && len(ps) > 0 {
			s += ":" + strings.Join(ps, "/")
		}
		if t.Address != "" {
			s += fmt.Sprintf(" (at %s)", t.Address)
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func orDirect(via string) string {
	if via == "" {
		return "direct"
	}
	return via
}

func logStartup(log *slog.Logger, cfg *config.Config, passive bool, listen []string, endpoints string) {
	for _, l := range startupLines(cfg, passive, listen, endpoints) {
		log.Info(l.msg, l.attrs...)
	}
}
