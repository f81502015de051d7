package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/zoomprobe/zoomprobe/analyzers"
	_ "github.com/zoomprobe/zoomprobe/analyzers/all" // the names analyzers.disabled may use
	"github.com/zoomprobe/zoomprobe/analyzers/httpinspect"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/exporters/eventlog"
	"github.com/zoomprobe/zoomprobe/probes"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Preflight checks what config validation cannot, because it depends on the
// machine: the BPF program builds and the kernel takes it, the interfaces
// exist (unless capture.wait_for_interfaces), the ranges, TLS and signature files load,
// the disabled analyzers exist, the event log's directory is writable. The
// daemon runs it at start and before a reload touches the running pipeline;
// `check-config` runs it too. Nothing is created or truncated (a probe file
// in the event log directory is removed at once). Errors name the field.
func Preflight(cfg *config.Config) error { return preflight(cfg, true) }

// preflight skips the interface check for a daemon whose inputs tests set.
func preflight(cfg *config.Config, interfaces bool) error {
	var errs []error
	if prog, err := loadBPF(cfg); err != nil {
		errs = append(errs, err)
	} else if err := capture.CheckFilter(prog, cfg.Capture.SnapLen); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", bpfField(cfg), err))
	}
	if interfaces {
		errs = append(errs, checkInterfaces(cfg)...)
	}
	if cfg.Zoom.RangesFile != "" {
		if _, err := zoom.LoadRangesFile(cfg.Zoom.RangesFile); err != nil {
			errs = append(errs, fmt.Errorf("zoom.ranges_file: %w", err))
		}
	}
	errs = append(errs, checkAnalyzerNames(cfg.Analyzers.Disabled)...)
	if err := checkEventLogPath(cfg.EventLog.Path); err != nil {
		errs = append(errs, err)
	}
	if err := checkEvidenceDir(cfg.Evidence.Dir); err != nil {
		errs = append(errs, err)
	}
	// The products file first, so its error names the field; then the whole
	// judge (roots, expected issuers) as the TLS analyzer and probes build it.
	productsOK := true
	if f := cfg.TLS.ProductsFile; f != "" {
		if _, err := certcheck.LoadProducts(f); err != nil {
			productsOK = false
			errs = append(errs, withField("tls.products_file", err))
		}
	}
	if productsOK {
		if _, err := probes.JudgeFromConfig(cfg.TLS); err != nil {
			errs = append(errs, withField("tls", err))
		}
	}
	if f := cfg.Reach.ProxySignaturesFile; f != "" {
		if _, err := httpinspect.LoadSignatures(f); err != nil {
			errs = append(errs, withField("reachability.proxy_signatures_file", err))
		}
	}
	return errors.Join(errs...)
}

// withField prefixes err with the config field unless it names one already.
func withField(field string, err error) error {
	if strings.HasPrefix(err.Error(), field) {
		return err
	}
	return fmt.Errorf("%s: %w", field, err)
}

func checkAnalyzerNames(disabled []string) []error {
	var known []string
	for _, p := range analyzers.Registered() {
		known = append(known, p.Name())
	}
	var errs []error
	for i, name := range disabled {
		found := false
		for _, k := range known {
			found = found || k == name
		}
		if !found {
			errs = append(errs, fmt.Errorf("analyzers.disabled[%d]: no analyzer named %q (known: %s)", i, name, strings.Join(known, ", ")))
		}
	}
	return errs
}

// checkEventLogPath makes sure the log can be opened and rotated: its
// directory exists and takes new files (rotation renames), and an existing
// log opens for appending.
func checkEventLogPath(path string) error {
	if path == "" || path == "-" {
		return nil
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("event_log.path: directory %s: %w (create it or change event_log.path)", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("event_log.path: %s is not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".zoomprobe-preflight-*")
	if err != nil {
		return fmt.Errorf("event_log.path: directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("event_log.path: %s is a directory; name a file in it", path)
		}
		// Opening a FIFO for writing blocks until a reader comes: refused
		// before any open, like any file that cannot be rotated.
		if !st.Mode().IsRegular() {
			return fmt.Errorf("event_log.path: %s is %s, not a regular file (name a file; \"-\" is standard output)", path, eventlog.FileKind(st.Mode()))
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("event_log.path: %w", err)
		}
		f.Close()
	}
	return nil
}

// checkEvidenceDir makes sure evidence files can be written: the directory
// (or, when it is still to be made, its nearest existing parent) is a
// writable directory.
func checkEvidenceDir(dir string) error {
	if dir == "" {
		return nil
	}
	at := dir
	for {
		st, err := os.Stat(at)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("evidence.dir: %s is not a directory", at)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || filepath.Dir(at) == at {
			return fmt.Errorf("evidence.dir: %w", err)
		}
		at = filepath.Dir(at)
	}
	probe, err := os.CreateTemp(at, ".zoomprobe-preflight-*")
	if err != nil {
		return fmt.Errorf("evidence.dir: %s is not writable: %w (change evidence.dir, or empty it to keep no evidence)", at, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// checkInterfaces refuses interfaces that do not exist, so a reload with a
// typo cannot leave the probe capturing nothing; capture.wait_for_interfaces
// accepts them (an interface created after the daemon, a VM's tap).
func checkInterfaces(cfg *config.Config) []error {
	if cfg.Capture.WaitForInterfaces {
		return nil
	}
	if len(cfg.Capture.Interfaces) == 0 {
		if _, err := captureInterfaces(cfg); err != nil {
			return []error{err}
		}
		return nil
	}
	var errs []error
	for i, name := range cfg.Capture.Interfaces {
		if name == "any" {
			continue
		}
		if _, err := net.InterfaceByName(name); err != nil {
			errs = append(errs, fmt.Errorf("capture.interfaces[%d]: no interface %q here (%v; `ip link` lists them; set capture.wait_for_interfaces: true to start and wait for it)", i, name, err))
		}
	}
	return errs
}
