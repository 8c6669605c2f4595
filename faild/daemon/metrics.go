package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/faild/faild/routes"
)

// The Prometheus endpoint (--metrics-listen). The loop owns every figure,
// so a scrape asks it for a snapshot over the request channel, as the
// status server does, and writes that; nothing here reads daemon state.

// scrape is the loop's answer to a scrape: immutable once sent.
type scrape struct {
	status *Status
	loss   map[string]int // by path (peer, LAN, address): the loss figure in percent
}

func pathKey(peer, lan, addr string) string { return peer + " " + lan + " " + addr }

// scrapeSnapshot builds a scrape as of now; the loop calls it.
func (d *Daemon) scrapeSnapshot(now time.Time) *scrape {
	sc := &scrape{status: d.snapshot(now), loss: map[string]int{}}
	for _, f := range d.fams {
		if f == nil {
			continue
		}
		f.table.Paths(now, func(id routes.PeerID, lan int, p routes.Path, _ routes.Route) {
			if pct := f.lossOf(id, lan); pct >= 0 {
				sc.loss[pathKey(id.String(), routes.LANName(lan), p.Addr.String())] = pct
			}
		})
	}
	return sc
}

// listenMetrics binds the metrics endpoint's socket: at start, so that an
// address in use is a start-up error.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for metrics on --metrics-listen %s: %w", addr, err)
	}
	return ln, nil
}

// serveMetrics answers scrapes on ln until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, requests chan<- request, log *slog.Logger) error {
	metrics.ExposeMetadata(true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		q := request{verb: "metrics", scrape: make(chan *scrape, 1)}
		if !post(ctx, requests, q) {
			http.Error(w, "faild is busy", http.StatusServiceUnavailable)
			return
		}
		select {
		case sc := <-q.scrape:
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			sc.write(w)
		case <-ctx.Done():
			http.Error(w, "faild is busy", http.StatusServiceUnavailable)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("failed to serve metrics: %w", err)
	}
	return nil
}

// write renders a scrape in the Prometheus text format.
func (sc *scrape) write(w interface{ Write([]byte) (int, error) }) {
	s := metrics.NewSet()
	st := sc.status
	gauge := func(name string, v float64) { s.GetOrCreateGauge(name, nil).Set(v) }
	counter := func(name string, v uint64) { s.GetOrCreateCounter(name).Set(v) }
	for _, p := range st.Paths {
		l := fmt.Sprintf(`{peer=%q,lan=%q,addr=%q}`, p.Peer, p.LAN, p.Addr)
		up := 0.0
		if p.State == "valid" {
			up = 1
		}
		gauge("faild_path_up"+l, up)
		gauge("faild_path_rtt_seconds"+l, p.RTTSeconds)
		gauge("faild_path_last_evidence_seconds"+l, p.LastEvidenceSeconds)
		if pct, ok := sc.loss[pathKey(p.Peer, p.LAN, p.Addr)]; ok {
			gauge("faild_path_loss_ratio"+l, float64(pct)/100)
		}
		counter("faild_failovers_total"+l, uint64(p.Failovers))
		counter("faild_switchbacks_total"+l, uint64(p.Switchbacks))
	}
	gauge("faild_peers", float64(st.Peers))
	gauge("faild_paths", float64(len(st.Paths)))
	gauge("faild_paths_down", float64(st.PathsDown))
	for reason, n := range st.Drops {
		counter(fmt.Sprintf(`faild_drops_total{reason=%q}`, reason), n)
	}
	counter("faild_hooks_run_total", st.Hooks.Run)
	counter("faild_hooks_failed_total", st.Hooks.Failed)
	counter("faild_hooks_dropped_total", st.Hooks.Dropped)
	counter("faild_addr_refused_total", st.AddrRefused)
	counter("faild_log_lines_lost_total", st.LogLinesLost)
	gauge("faild_diagnoses", float64(len(st.Diagnosis)))
	for _, d := range st.Diagnosis {
		gauge(fmt.Sprintf(`faild_diagnosis{lan=%q,fault=%q,node=%q,peer=%q,groups=%q}`, d.LAN, d.Fault, d.Node, d.Peer, d.Groups), 1)
	}
	s.WritePrometheus(w)
}
