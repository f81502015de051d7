package daemon

import (
	"context"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"

	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/exporters/findings"
)

// HTTPLimits bound what one client can hold of the web server. Zero fields
// take the defaults below.
type HTTPLimits struct {
	ReadHeaderTimeout time.Duration // a client must send its headers within this
	IdleTimeout       time.Duration // a keep-alive connection idle this long is closed
	WriteTimeout      time.Duration // a response (a scrape, a reload) must be written within this
	MaxHeaderBytes    int
}

// Defaults: generous for a scrape every few seconds over a slow link, tight
// enough that idle or slow connections do not pile up.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute // above any sane scrape interval, so keep-alive still pays
	DefaultWriteTimeout      = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	// reloadTimeout bounds /-/reload; below the write timeout so the answer
	// gets out.
	reloadTimeout = 30 * time.Second
)

func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// HTTPServer is the web server Run serves, with its timeouts and limits set.
func (d *Daemon) HTTPServer() *http.Server {
	l := d.opts.HTTP.withDefaults()
	return &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		WriteTimeout:      l.WriteTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Paths of the findings page and its JSON; / shows the page too.
const (
	findingsPath    = "/findings"
	findingsAPIPath = "/api/v1/findings"
	evidencePath    = "/evidence/"
)

// Handler serves /metrics, /-/healthy, /-/ready, /-/reload, and the findings
// page (/ and /findings) with its JSON (/api/v1/findings).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(d.opts.MetricsPath, promhttp.HandlerFor(d.Gatherer(), promhttp.HandlerOpts{ErrorLog: slogPrinter{d}, EnableOpenMetrics: true}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("Healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if why := d.NotReady(); len(why) > 0 {
			http.Error(w, "Not ready:\n"+strings.Join(why, "\n"), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("Ready.\n"))
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if !d.opts.EnableLifecycle {
			// As Prometheus: lifecycle endpoints need --web.enable-lifecycle.
			http.Error(w, "Lifecycle API is not enabled (start with --web.enable-lifecycle, or send SIGHUP).", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Use POST to reload the configuration.", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), reloadTimeout)
		defer cancel()
		if err := d.Reload(ctx); err != nil {
			http.Error(w, "Reload failed; the previous configuration keeps running:\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("Reloaded.\n"))
	})
	// The findings page is the landing page; every path is under the web
	// config's TLS and auth (exporter-toolkit wraps the whole handler).
	page := &findings.Page{
		Store:    d.findings,
		Site:     func() string { return d.Config().Site },
		Version:  version.Version,
		API:      findingsAPIPath,
		Evidence: evidencePath,
		Links:    []findings.Link{{Address: d.opts.MetricsPath, Text: "Metrics"}, {Address: "/-/ready", Text: "Readiness"}},
	}
	mux.HandleFunc("GET "+evidencePath+"{name}", d.serveEvidence)
	for path, h := range map[string]http.Handler{"/{$}": page.HTML(), findingsPath: page.HTML(), findingsAPIPath: page.JSON()} {
		if path != d.opts.MetricsPath && !(path == "/{$}" && d.opts.MetricsPath == "/") {
			mux.Handle(path, h)
		}
	}
	return mux
}

// serveEvidence sends one evidence pcapng from evidence.dir, by the name the
// finding carries; the directory is opened as an os.Root, so no name can
// reach outside it, and ValidName refuses paths, dot and temporary files.
func (d *Daemon) serveEvidence(w http.ResponseWriter, r *http.Request) {
	dir := d.Config().Evidence.Dir
	name := r.PathValue("name")
	if dir == "" {
		http.Error(w, "No evidence is kept: evidence.dir is not set.", http.StatusNotFound)
		return
	}
	if !evidence.ValidName(name) {
		http.Error(w, "Not an evidence file name.", http.StatusNotFound)
		return
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		http.Error(w, "The evidence directory cannot be opened.", http.StatusNotFound)
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		http.Error(w, "No such evidence file (removed by evidence.retention or evidence.max_dir_bytes?).", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, "Not an evidence file.", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pcapng")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, st.ModTime(), f)
}

type slogPrinter struct{ d *Daemon }

func (p slogPrinter) Println(v ...any) { p.d.log.Error("metrics handler", "err", v) }
