package daemon

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
)

// Handler serves /metrics, /-/healthy, /-/ready, /-/reload and a landing page.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(d.opts.MetricsPath, promhttp.HandlerFor(d.Gatherer(), promhttp.HandlerOpts{ErrorLog: slogPrinter{d}, EnableOpenMetrics: true}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("Healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !d.Ready() {
			http.Error(w, "Not ready: no pipeline running.", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("Ready.\n"))
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Use POST to reload the configuration.", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
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
