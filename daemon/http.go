package daemon

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"

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
		Store:   d.findings,
		Site:    func() string { return d.Config().Site },
		Version: version.Version,
		API:     findingsAPIPath,
		Links:   []findings.Link{{Address: d.opts.MetricsPath, Text: "Metrics"}, {Address: "/-/ready", Text: "Readiness"}},
	}
	for path, h := range map[string]http.Handler{"/{$}": page.HTML(), findingsPath: page.HTML(), findingsAPIPath: page.JSON()} {
		if path != d.opts.MetricsPath && !(path == "/{$}" && d.opts.MetricsPath == "/") {
			mux.Handle(path, h)
		}
	}
	return mux
}

type slogPrinter struct{ d *Daemon }

func (p slogPrinter) Println(v ...any) { p.d.log.Error("metrics handler", "err", v) }
