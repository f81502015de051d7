package daemon

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
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

// Handler serves /metrics, /-/healthy, /-/ready, /-/reload and a landing page.
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
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "zoomprobe",
		Description: "Says what breaks Zoom on this network: TLS interception, blocked ports, resets, proxies, DNS filtering, clock skew.",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: d.opts.MetricsPath, Text: "Metrics"},
			{Address: "/-/ready", Text: "Readiness"},
		},
	})
	if err == nil {
		mux.Handle("/", landing)
	}
	return mux
}

type slogPrinter struct{ d *Daemon }

func (p slogPrinter) Println(v ...any) { p.d.log.Error("metrics handler", "err", v) }
